// PostgreSQL backend: make_postgres_factory (declared in db/database.hpp) plus what the rest of the server
// may want to know about it: the role requests run as, and a password-free rendering of a connection URL
// for logs and error messages.
//   spdlog::info("storage: {}", db::redact_database_url(config.database_url));  // "cdx@db:5432/cdx"
#pragma once
#include <string>
#include <string_view>

namespace cdx::db {

// Created by the migrations (NOLOGIN, no BYPASSRLS, owns nothing); pooled connections SET ROLE to it.
inline constexpr std::string_view kPostgresAppRole = "cdx_app";

// "user@host:port/dbname" from a libpq URL or keyword string, never the password; a URL libpq cannot
// parse gives "<invalid database URL>" (libpq's own parse error may quote the password).
std::string redact_database_url(const std::string& url);

}  // namespace cdx::db
