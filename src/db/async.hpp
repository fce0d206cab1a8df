// Database writes awaited from a coroutine without a thread waiting through the commit: the job goes to
// the database's writer (SQLite: the group commit; PostgreSQL: a writer thread per pooled connection) and
// the coroutine resumes on its own executor once the transaction holding it is committed (on disk). A
// database that cannot queue writes runs the blocking write on the worker pool instead. Same guarantees
// as Database::write: one transaction (or one savepoint of a group commit), rolled back alone if fn
// throws; fn's exception reaches the awaiter.
//   Company c = co_await db::write_async(*db, workers, scope, [&](db::Tx& tx) { return insert(tx, scope, in); });
#pragma once
#include <utility>  // before Asio's coroutine headers (GCC 12 + Boost 1.74)
#include <boost/asio/async_result.hpp>

#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <type_traits>

#include "common/task.hpp"
#include "common/worker_pool.hpp"
#include "db/database.hpp"

namespace cdx::db {
namespace internal {

template <class R>
using ResultSlot = std::conditional_t<std::is_void_v<R>, bool, std::optional<R>>;

// The job a suspended coroutine hands to the database: runs fn on the writer, stores its result in the
// coroutine's frame, and on finish() posts the coroutine's continuation to the executor it awaits on.
template <class F, class R, class Handler>
class AwaitedWrite final : public WriteJob {
 public:
  AwaitedWrite(Database& db, const TenantScope* scope, F& fn, ResultSlot<R>& result, std::exception_ptr& error,
               Handler handler)
      : db_(db), scope_(scope), fn_(fn), result_(result), error_(error), handler_(std::move(handler)) {}

  // Writes fn makes through the database's own write() (a service's) join this transaction.
  void run(Tx& tx) override {
    db_.joining(scope_, tx, [&](Tx& t) {
      if constexpr (std::is_void_v<R>) {
        fn_(t);
      } else {
        result_.emplace(fn_(t));
      }
    });
  }
  void finish(std::exception_ptr error) noexcept override {
    error_ = std::move(error);
    resume_on_own_executor(std::move(handler_));
  }

 private:
  Database& db_;
  const TenantScope* scope_;
  F& fn_;
  ResultSlot<R>& result_;
  std::exception_ptr& error_;
  Handler handler_;
};

template <class F, class R = std::invoke_result_t<F&, Tx&>>
Task<R> write_async(Database& db, WorkerPool* workers, const TenantScope* scope, F& fn, WriteHold* hold) {
  if (!hold && !db.queues_writes()) {
    // The database blocks its caller until the commit: that caller is a worker, never the I/O thread.
    co_return co_await workers->run(
        [&]() -> R { return scope ? db.write(*scope, fn) : db.write_platform(fn); });
  }
  std::exception_ptr error;
  ResultSlot<R> result{};
  co_await boost::asio::async_initiate<const boost::asio::use_awaitable_t<Executor>, void()>(
      [&](auto handler) {
        auto job = std::make_unique<AwaitedWrite<F, R, decltype(handler)>>(db, scope, fn, result, error,
                                                                           std::move(handler));
        if (hold)
          hold->submit(std::move(job));
        else
          db.submit(scope, std::move(job));
      },
      use_task);
  if (error) std::rethrow_exception(error);
  if constexpr (!std::is_void_v<R>) co_return std::move(*result);
}

}  // namespace internal

// Tenant data: Database::write, awaited. fn(Tx&) runs on a database thread (the SQLite writer) while the
// coroutine is suspended, so it may use the caller's locals by reference; it must not await. Writes it
// starts on the same database and tenant (a service's own) join its transaction.
template <class F>
Task<std::invoke_result_t<F&, Tx&>> write_async(Database& db, WorkerPool& workers, const TenantScope& scope, F fn) {
  co_return co_await internal::write_async(db, &workers, &scope, fn, nullptr);
}

// Tenant data written by the holder of a hold on the tenant's writes (Database::hold_writes), awaited.
template <class F>
Task<std::invoke_result_t<F&, Tx&>> write_async(Database& db, WriteHold& hold, const TenantScope& scope,
                                                F fn) {
  co_return co_await internal::write_async(db, nullptr, &scope, fn, &hold);
}

// A write through a hold, submitted now and awaited later: the coroutine makes the next batch ready while
// this one commits (bulk work). fn runs on the writer and must not outlive what it refers to: await wait()
// (which rethrows fn's error) before those go, also when something else failed meanwhile.
//   PendingWrite w = submit_write(db, hold, scope, [&](db::Tx& tx) { store(tx, chunk); });
//   next = co_await workers.run(...);   co_await w.wait();
class PendingWrite {
 public:
  template <class F>
  PendingWrite(Database& db, WriteHold& hold, const TenantScope& scope, F fn)
      : state_(std::make_shared<State>()) {
    hold.submit(std::make_unique<Job<F>>(db, scope, std::move(fn), state_));
  }
  Task<void> wait() {
    std::shared_ptr<State> keep = state_;
    // No owning capture in the initiation: GCC 12 may destroy a temporary of a co_await expression twice.
    State* state = keep.get();
    co_await boost::asio::async_initiate<const boost::asio::use_awaitable_t<Executor>, void()>(
        [state](auto handler) {
          auto h = std::make_shared<decltype(handler)>(std::move(handler));
          std::function<void()> resume = [h] {
            auto ex = boost::asio::get_associated_executor(*h);
            boost::asio::post(ex, std::move(*h));
          };
          std::unique_lock lock(state->mutex);
          if (!state->done) {
            state->resume = std::move(resume);
            return;
          }
          lock.unlock();
          resume();
        },
        use_task);
    if (state->error) std::rethrow_exception(state->error);
  }

 private:
  struct State {
    std::mutex mutex;
    bool done = false;
    std::exception_ptr error;
    std::function<void()> resume;  // set by wait() when the write is not finished yet
  };
  template <class F>
  class Job final : public WriteJob {
   public:
    Job(Database& db, const TenantScope& scope, F fn, std::shared_ptr<State> state)
        : db_(db), scope_(scope), fn_(std::move(fn)), state_(std::move(state)) {}
    void run(Tx& tx) override { db_.joining(&scope_, tx, fn_); }
    void finish(std::exception_ptr error) noexcept override {
      std::function<void()> resume;
      {
        std::lock_guard lock(state_->mutex);
        state_->done = true;
        state_->error = std::move(error);
        resume = std::move(state_->resume);
      }
      if (resume) resume();
    }

   private:
    Database& db_;
    const TenantScope& scope_;
    F fn_;
    std::shared_ptr<State> state_;
  };
  std::shared_ptr<State> state_;
};

// Platform tables (no tenant): Database::write_platform, awaited.
template <class F>
Task<std::invoke_result_t<F&, Tx&>> write_platform_async(Database& db, WorkerPool& workers, F fn) {
  co_return co_await internal::write_async(db, &workers, nullptr, fn, nullptr);
}

}  // namespace cdx::db
