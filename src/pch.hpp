// Precompiled header: the heavy, stable third-party headers every translation unit pays for once.
#pragma once
#include <utility>  // before Asio's coroutine headers: GCC 12 needs it (Boost 1.74)
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>
#include <fmt/format.h>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>
