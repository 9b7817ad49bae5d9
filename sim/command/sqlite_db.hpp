// A thin RAII layer over SQLite for command-sim's state: one connection, prepared statements cached by
// their SQL text, values always bound (never spliced into SQL), and SQLite's result codes mapped to the
// project's ErrorCodes with the database path and the statement in the message.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.hpp"

struct sqlite3;
struct sqlite3_stmt;

namespace wincert::sim::command {

// SQLite's result code as a coded Error: SQLITE_FULL kResourceExhausted, BUSY/LOCKED kUnavailable,
// CORRUPT/NOTADB kFailedPrecondition (a damaged file), PERM/READONLY/CANTOPEN kPermissionDenied, others kInternal.
Error sqlite_error(int result_code, std::string message);

class SqliteStatement {
 public:
  SqliteStatement(sqlite3* db, sqlite3_stmt* stmt, const std::string* sql) : db_(db), stmt_(stmt), sql_(sql) {}

  // Binding (1-based, as SQLite counts); the text is copied by SQLite (SQLITE_TRANSIENT).
  SqliteStatement& bind(int index, std::string_view text);
  SqliteStatement& bind(int index, std::int64_t value);
  SqliteStatement& bind_null(int index);

  // One step: true when a row is ready, false when done.
  Result<bool> step();
  // Steps until done (an INSERT, UPDATE or DELETE).
  Status run();

  std::int64_t column_int(int index) const;
  std::string column_text(int index) const;
  bool column_is_null(int index) const;
  // Ends a query read before its last row (it would hold its read transaction open otherwise).
  void reset();

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_;
  const std::string* sql_;
};

class SqliteDatabase {
 public:
  // Opens (creating it when missing) the database file at `path`.
  static Result<SqliteDatabase> open(const std::string& path);

  SqliteDatabase(SqliteDatabase&&) noexcept;
  SqliteDatabase& operator=(SqliteDatabase&&) noexcept;
  ~SqliteDatabase();

  // Statements with no parameters and no rows (DDL, PRAGMA, BEGIN/COMMIT).
  Status exec(const std::string& sql);
  // A cached prepared statement, reset and with its bindings cleared: valid until the next prepare() of the
  // same SQL. The SQL is a literal of the caller's; values go through bind().
  Result<SqliteStatement> prepare(const std::string& sql);
  // A one-row, one-column query (PRAGMA answers and the like); nullopt when there is no row.
  Result<std::optional<std::string>> query_text(const std::string& sql);

  const std::string& path() const { return path_; }

 private:
  struct Cached;
  SqliteDatabase(std::string path, sqlite3* db);
  void close() noexcept;

  std::string path_;
  sqlite3* db_ = nullptr;
  std::map<std::string, std::unique_ptr<Cached>, std::less<>> statements_;
};

// BEGIN IMMEDIATE ... COMMIT; rolled back at destruction unless committed.
class SqliteTransaction {
 public:
  static Result<SqliteTransaction> begin(SqliteDatabase& db);
  SqliteTransaction(SqliteTransaction&& other) noexcept : db_(other.db_) { other.db_ = nullptr; }
  SqliteTransaction& operator=(SqliteTransaction&&) = delete;
  ~SqliteTransaction();
  Status commit();

 private:
  explicit SqliteTransaction(SqliteDatabase& db) : db_(&db) {}
  SqliteDatabase* db_;
};

}  // namespace wincert::sim::command
