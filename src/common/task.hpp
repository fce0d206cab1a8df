// The coroutine type of the whole server: an Asio awaitable bound to the io_context's concrete executor,
// so the hot path pays for no type-erased executor on every suspension.
//   cdx::Task<int> answer() { co_return 42; }
//   co_await socket.async_read_some(buffer, asio::redirect_error(cdx::use_task, ec));
#pragma once
#include <utility>  // before Asio's coroutine headers (GCC 12 + Boost 1.74)
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace cdx {

using Executor = boost::asio::io_context::executor_type;
template <class T = void>
using Task = boost::asio::awaitable<T, Executor>;
inline constexpr boost::asio::use_awaitable_t<Executor> use_task{};

}  // namespace cdx
