#include "sim/command/sqlite_db.hpp"

#include <sqlite3.h>

#include <utility>

namespace wincert::sim::command {

Error sqlite_error(int result_code, std::string message) {
  message += std::string(" (SQLite: ") + sqlite3_errstr(result_code) + ")";
  switch (result_code & 0xFF) {
    case SQLITE_FULL:
      return Error::resource_exhausted(std::move(message) + "; free some disk space");
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return Error::unavailable(std::move(message) + "; is another command-sim using the same --state directory?");
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return Error::failed_precondition(std::move(message) +
                                        "; the state database is damaged: move it away to start afresh");
    case SQLITE_PERM:
    case SQLITE_READONLY:
    case SQLITE_CANTOPEN:
    case SQLITE_AUTH:
      return Error::permission_denied(std::move(message) + "; check the --state directory's permissions");
    default:
      return Error::internal(std::move(message));
  }
}

// ---- statements

SqliteStatement& SqliteStatement::bind(int index, std::string_view text) {
  sqlite3_bind_text(stmt_, index, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
  return *this;
}

SqliteStatement& SqliteStatement::bind(int index, std::int64_t value) {
  sqlite3_bind_int64(stmt_, index, value);
  return *this;
}

SqliteStatement& SqliteStatement::bind_null(int index) {
  sqlite3_bind_null(stmt_, index);
  return *this;
}

Result<bool> SqliteStatement::step() {
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return sqlite_error(sqlite3_extended_errcode(db_),
                      std::string(sqlite3_errmsg(db_)) + " in '" + *sql_ + "' on " + sqlite3_db_filename(db_, "main"));
}

Status SqliteStatement::run() {
  for (;;) {
    WINCERT_ASSIGN_OR_RETURN(const bool row, step());
    if (!row) return {};
  }
}

std::int64_t SqliteStatement::column_int(int index) const { return sqlite3_column_int64(stmt_, index); }

std::string SqliteStatement::column_text(int index) const {
  const auto* text = sqlite3_column_text(stmt_, index);
  const int size = sqlite3_column_bytes(stmt_, index);
  return text == nullptr ? std::string() : std::string(reinterpret_cast<const char*>(text), static_cast<size_t>(size));
}

void SqliteStatement::reset() { sqlite3_reset(stmt_); }

bool SqliteStatement::column_is_null(int index) const { return sqlite3_column_type(stmt_, index) == SQLITE_NULL; }

// ---- the connection

struct SqliteDatabase::Cached {
  std::string sql;
  sqlite3_stmt* stmt = nullptr;
  ~Cached() { sqlite3_finalize(stmt); }
};

SqliteDatabase::SqliteDatabase(std::string path, sqlite3* db) : path_(std::move(path)), db_(db) {}

SqliteDatabase::SqliteDatabase(SqliteDatabase&& other) noexcept
    : path_(std::move(other.path_)),
      db_(std::exchange(other.db_, nullptr)),
      statements_(std::move(other.statements_)) {}

SqliteDatabase& SqliteDatabase::operator=(SqliteDatabase&& other) noexcept {
  if (this != &other) {
    close();
    path_ = std::move(other.path_);
    db_ = std::exchange(other.db_, nullptr);
    statements_ = std::move(other.statements_);
  }
  return *this;
}

SqliteDatabase::~SqliteDatabase() { close(); }

void SqliteDatabase::close() noexcept {
  statements_.clear();  // finalized before the connection closes
  if (db_ != nullptr) sqlite3_close_v2(db_);
  db_ = nullptr;
}

Result<SqliteDatabase> SqliteDatabase::open(const std::string& path) {
  sqlite3* db = nullptr;
  const int rc =
      sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string message = db != nullptr ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close_v2(db);
    return sqlite_error(rc, "cannot open the state database " + path + ": " + message);
  }
  sqlite3_extended_result_codes(db, 1);
  return SqliteDatabase(path, db);
}

Status SqliteDatabase::exec(const std::string& sql) {
  char* message = nullptr;
  const int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &message);
  if (rc == SQLITE_OK) return {};
  std::string text = message != nullptr ? message : sqlite3_errstr(rc);
  sqlite3_free(message);
  return sqlite_error(rc, text + " in '" + sql + "' on " + path_);
}

Result<SqliteStatement> SqliteDatabase::prepare(const std::string& sql) {
  auto it = statements_.find(sql);
  if (it == statements_.end()) {
    auto cached = std::make_unique<Cached>();
    cached->sql = sql;
    const int rc = sqlite3_prepare_v3(db_, sql.c_str(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT,
                                      &cached->stmt, nullptr);
    if (rc != SQLITE_OK)
      return sqlite_error(rc, std::string(sqlite3_errmsg(db_)) + " preparing '" + sql + "' on " + path_);
    it = statements_.emplace(sql, std::move(cached)).first;
  }
  sqlite3_stmt* stmt = it->second->stmt;
  sqlite3_reset(stmt);
  sqlite3_clear_bindings(stmt);
  return SqliteStatement(db_, stmt, &it->second->sql);
}

Result<std::optional<std::string>> SqliteDatabase::query_text(const std::string& sql) {
  WINCERT_ASSIGN_OR_RETURN(auto stmt, prepare(sql));
  WINCERT_ASSIGN_OR_RETURN(const bool row, stmt.step());
  std::optional<std::string> value;
  if (row) value = stmt.column_text(0);
  stmt.reset();
  return value;
}

// ---- transactions

Result<SqliteTransaction> SqliteTransaction::begin(SqliteDatabase& db) {
  WINCERT_TRY(db.exec("BEGIN IMMEDIATE"));
  return SqliteTransaction(db);
}

SqliteTransaction::~SqliteTransaction() {
  if (db_ != nullptr) (void)db_->exec("ROLLBACK");
}

Status SqliteTransaction::commit() {
  SqliteDatabase* db = std::exchange(db_, nullptr);
  if (auto st = db->exec("COMMIT"); !st) {
    (void)db->exec("ROLLBACK");
    return st;
  }
  return {};
}

}  // namespace wincert::sim::command
