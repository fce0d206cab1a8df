// The coroutine type of the whole server: an Asio awaitable bound to the io_context's concrete executor,
// so the hot path pays for no type-erased executor on every suspension.
//   cdx::Task<int> answer() { co_return 42; }
//   co_await socket.async_read_some(buffer, asio::redirect_error(cdx::use_task, ec));
#pragma once
#include <utility>  // before Asio's coroutine headers (GCC 12 + Boost 1.74)
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace cdx {

using Executor = boost::asio::io_context::executor_type;
template <class T = void>
using Task = boost::asio::awaitable<T, Executor>;
inline constexpr boost::asio::use_awaitable_t<Executor> use_task{};

// Resumes a suspended coroutine (its completion handler) on its own executor, from another thread: a
// worker, a database writer. The coroutine may resume, finish and let its io_context's run() return (and
// the io_context be destroyed) before post() has returned on this thread; the work guard keeps run() going
// until this thread is done with the io_context.
template <class Handler>
void resume_on_own_executor(Handler&& handler) {
  const auto ex = boost::asio::get_associated_executor(handler);
  const auto guard = boost::asio::make_work_guard(ex);
  boost::asio::post(ex, std::forward<Handler>(handler));
}

}  // namespace cdx
