#include "sim/command/state_db.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "common/encoding.hpp"
#include "common/log.hpp"

namespace wincert::sim::command {
namespace {

constexpr int kSchemaVersion = 1;

// Each table keeps the record whole in `doc` (JSON, as state.hpp defines it) and, as columns, what
// lookups and joins select by; see README.md for which query uses which index.
constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS agents(
  id TEXT PRIMARY KEY, client_machine TEXT NOT NULL, status TEXT NOT NULL, doc TEXT NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS agents_by_machine ON agents(client_machine COLLATE NOCASE);
CREATE TABLE IF NOT EXISTS stores(
  id TEXT PRIMARY KEY, agent_id TEXT NOT NULL, orchestrator TEXT NOT NULL, client_machine TEXT NOT NULL,
  store_path TEXT NOT NULL, doc TEXT NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS stores_by_agent ON stores(agent_id);
CREATE INDEX IF NOT EXISTS stores_by_orchestrator ON stores(orchestrator COLLATE NOCASE);
CREATE TABLE IF NOT EXISTS inventory(
  store_id TEXT NOT NULL, position INTEGER NOT NULL, alias TEXT NOT NULL, thumbprint TEXT NOT NULL,
  doc TEXT NOT NULL, PRIMARY KEY(store_id, position)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS inventory_by_thumbprint ON inventory(thumbprint);
CREATE TABLE IF NOT EXISTS jobs(
  id TEXT PRIMARY KEY, store_id TEXT NOT NULL, kind TEXT NOT NULL, state TEXT NOT NULL, open_run INTEGER NOT NULL,
  doc TEXT NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS jobs_by_store ON jobs(store_id);
CREATE INDEX IF NOT EXISTS jobs_by_state ON jobs(state);
CREATE TABLE IF NOT EXISTS history(
  job_history_id INTEGER PRIMARY KEY, job_id TEXT NOT NULL, store_id TEXT NOT NULL, agent_id TEXT NOT NULL,
  result TEXT NOT NULL, operation_end TEXT NOT NULL, doc TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS history_by_job ON history(job_id);
CREATE INDEX IF NOT EXISTS history_by_store ON history(store_id);
CREATE TABLE IF NOT EXISTS issued(
  seq INTEGER PRIMARY KEY, purpose TEXT NOT NULL, thumbprint TEXT NOT NULL, job_id TEXT NOT NULL,
  agent_id TEXT NOT NULL, doc TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS issued_by_thumbprint ON issued(thumbprint);
)sql";

auto log() { return logger("command-sim"); }

// The file is created 0600 before SQLite opens it: it holds PFX passwords and store credentials, and
// SQLite gives its -wal and -shm files the database file's permissions.
Status create_private_file(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::exists(path, ec)) return {};
  { std::ofstream create(path, std::ios::binary | std::ios::app); }
  std::filesystem::permissions(path, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write,
                               std::filesystem::perm_options::replace, ec);
  if (ec || !std::filesystem::exists(path))
    return Error::permission_denied("cannot create the state database " + path + ": " + ec.message() +
                                    " (check the --state directory's permissions)");
  return {};
}

template <class Record>
Result<Record> parse_row(const std::string& text, const std::string& table, const std::string& db_path) {
  auto doc = parse_json(text);
  if (!doc) return Error::failed_precondition("a row of table " + table + " in " + db_path + " is not valid JSON");
  auto record = from_document<Record>(*doc);
  if (!record) return record.error().context(db_path + ", table " + table + ": ");
  return record;
}

}  // namespace

void StateChanges::merge(const StateChanges& other) {
  agents.insert(other.agents.begin(), other.agents.end());
  stores.insert(other.stores.begin(), other.stores.end());
  inventories.insert(other.inventories.begin(), other.inventories.end());
  jobs.insert(other.jobs.begin(), other.jobs.end());
  history.insert(other.history.begin(), other.history.end());
}

Result<StateDb> StateDb::open(const std::string& dir, Durability durability) {
  const std::string db_path = (std::filesystem::path(dir) / "state.db").string();
  WINCERT_TRY(create_private_file(db_path));
  WINCERT_ASSIGN_OR_RETURN(auto db, SqliteDatabase::open(db_path));
  StateDb state_db(std::move(db));
  // One process owns the database: no file-lock system calls per transaction, the WAL index in heap memory
  // (no -shm file), and a second command-sim on the same --state directory fails at start instead of racing.
  // Set before the first access, or SQLite would already have mapped a shared-memory WAL index.
  WINCERT_TRY(state_db.db_.exec("PRAGMA locking_mode=EXCLUSIVE"));
  WINCERT_ASSIGN_OR_RETURN(auto version_text, state_db.db_.query_text("PRAGMA user_version"));
  const int version = version_text ? std::atoi(version_text->c_str()) : 0;
  if (version > kSchemaVersion)
    return Error::failed_precondition(db_path + " has schema version " + std::to_string(version) +
                                      ", newer than this command-sim understands (" + std::to_string(kSchemaVersion) +
                                      "): use a newer command-sim or another --state directory");
  WINCERT_TRY(state_db.create_schema(durability));
  if (version == 0) {
    // A new database. An older command-sim's state.json is imported (again, should a crash have interrupted
    // an earlier import: the rows are written idempotently); a damaged one stops the start every time.
    StateFile legacy(dir);
    std::error_code ec;
    if (std::filesystem::exists(legacy.path(), ec)) {
      WINCERT_ASSIGN_OR_RETURN(const State imported, legacy.load());
      WINCERT_TRY(state_db.write_all(imported));
      const std::string moved = legacy.path() + ".imported";
      std::filesystem::rename(legacy.path(), moved, ec);
      log()->info("imported {} into {} ({} agent(s), {} store(s), {} job(s), {} history entries){}", legacy.path(),
                  db_path, imported.agents.size(), imported.stores.size(), imported.jobs.size(),
                  imported.history.size(), ec ? "; could not rename it: " + ec.message() : "; renamed to " + moved);
    }
    WINCERT_TRY(state_db.db_.exec("PRAGMA user_version=" + std::to_string(kSchemaVersion)));
  }
  return state_db;
}

Status StateDb::create_schema(Durability durability) {
  WINCERT_ASSIGN_OR_RETURN(auto mode, db_.query_text("PRAGMA journal_mode=WAL"));
  if (!mode || !iequals(*mode, "wal"))
    return Error::failed_precondition("cannot put " + db_.path() + " in WAL mode (journal mode stays '" +
                                      mode.value_or("") + "'): is the --state directory on a local file system?");
  WINCERT_TRY(db_.exec(durability == Durability::kFull ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL"));
  return db_.exec(kSchema);
}

Result<State> StateDb::load() {
  State state;
  {
    WINCERT_ASSIGN_OR_RETURN(auto stmt, db_.prepare("SELECT doc FROM agents"));
    for (;;) {
      WINCERT_ASSIGN_OR_RETURN(const bool row, stmt.step());
      if (!row) break;
      WINCERT_ASSIGN_OR_RETURN(auto agent, parse_row<Agent>(stmt.column_text(0), "agents", path()));
      state.agents[to_lower(agent.id)] = std::move(agent);
    }
  }
  {
    WINCERT_ASSIGN_OR_RETURN(auto stmt, db_.prepare("SELECT doc FROM stores"));
    for (;;) {
      WINCERT_ASSIGN_OR_RETURN(const bool row, stmt.step());
      if (!row) break;
      WINCERT_ASSIGN_OR_RETURN(auto store, parse_row<Store>(stmt.column_text(0), "stores", path()));
      state.stores[to_lower(store.id)] = std::move(store);
    }
  }
  {
    WINCERT_ASSIGN_OR_RETURN(auto stmt, db_.prepare("SELECT store_id, doc FROM inventory ORDER BY store_id, position"));
    for (;;) {
      WINCERT_ASSIGN_OR_RETURN(const bool row, stmt.step());
      if (!row) break;
      WINCERT_ASSIGN_OR_RETURN(auto item, parse_row<InventoryItem>(stmt.column_text(1), "inventory", path()));
      if (Store* store = state.find_store(stmt.column_text(0))) store->inventory.push_back(std::move(item));
    }
  }
  {
    WINCERT_ASSIGN_OR_RETURN(auto stmt, db_.prepare("SELECT doc FROM jobs"));
    for (;;) {
      WINCERT_ASSIGN_OR_RETURN(const bool row, stmt.step());
      if (!row) break;
      WINCERT_ASSIGN_OR_RETURN(auto job, parse_row<Job>(stmt.column_text(0), "jobs", path()));
      state.next_history_id = std::max(state.next_history_id, job.open_run + 1);
      state.jobs[to_lower(job.id)] = std::move(job);
    }
  }
  {
    WINCERT_ASSIGN_OR_RETURN(auto stmt, db_.prepare("SELECT doc FROM history ORDER BY job_history_id"));
    for (;;) {
      WINCERT_ASSIGN_OR_RETURN(const bool row, stmt.step());
      if (!row) break;
      WINCERT_ASSIGN_OR_RETURN(auto entry, parse_row<HistoryEntry>(stmt.column_text(0), "history", path()));
      state.next_history_id = std::max(state.next_history_id, entry.job_history_id + 1);
      state.history[entry.job_history_id] = std::move(entry);
    }
  }
  {
    WINCERT_ASSIGN_OR_RETURN(auto stmt, db_.prepare("SELECT doc FROM issued ORDER BY seq"));
    for (;;) {
      WINCERT_ASSIGN_OR_RETURN(const bool row, stmt.step());
      if (!row) break;
      WINCERT_ASSIGN_OR_RETURN(auto record, parse_row<IssuedRecord>(stmt.column_text(0), "issued", path()));
      state.issued.push_back(std::move(record));
    }
  }
  WINCERT_ASSIGN_OR_RETURN(auto stmt, db_.prepare("SELECT value FROM meta WHERE key = ?1"));
  stmt.bind(1, std::string_view("next_history_id"));
  WINCERT_ASSIGN_OR_RETURN(const bool row, stmt.step());
  next_id_saved_ = row ? stmt.column_int(0) : -1;
  stmt.reset();
  state.next_history_id = std::max(state.next_history_id, next_id_saved_);
  issued_saved_ = state.issued.size();
  return state;
}

Status StateDb::commit(const State& state, const StateChanges& changes) {
  if (changes.empty() && state.issued.size() == issued_saved_ && state.next_history_id == next_id_saved_) return {};
  WINCERT_ASSIGN_OR_RETURN(auto transaction, SqliteTransaction::begin(db_));
  WINCERT_TRY(write(state, changes));
  WINCERT_TRY(transaction.commit());
  issued_saved_ = state.issued.size();
  next_id_saved_ = state.next_history_id;
  return {};
}

Status StateDb::write_all(const State& state) {
  StateChanges all;
  for (const auto& [id, agent] : state.agents) all.agents.insert(id);
  for (const auto& [id, store] : state.stores) {
    all.stores.insert(id);
    all.inventories.insert(id);
  }
  for (const auto& [id, job] : state.jobs) all.jobs.insert(id);
  for (const auto& [id, entry] : state.history) all.history.insert(id);
  issued_saved_ = 0;
  next_id_saved_ = -1;
  return commit(state, all);
}

Status StateDb::write(const State& state, const StateChanges& changes) {
  for (const std::string& id : changes.agents) {
    auto found = state.agents.find(id);
    if (found == state.agents.end()) {
      WINCERT_ASSIGN_OR_RETURN(auto del, db_.prepare("DELETE FROM agents WHERE id = ?1"));
      WINCERT_TRY(del.bind(1, id).run());
      continue;
    }
    const Agent& a = found->second;
    WINCERT_ASSIGN_OR_RETURN(
        auto put,
        db_.prepare("INSERT OR REPLACE INTO agents(id, client_machine, status, doc) VALUES (?1, ?2, ?3, ?4)"));
    WINCERT_TRY(put.bind(1, id)
                    .bind(2, a.client_machine)
                    .bind(3, agent_status_name(a.status))
                    .bind(4, dump_json(to_document(a)))
                    .run());
  }
  for (const std::string& id : changes.stores) {
    auto found = state.stores.find(id);
    if (found == state.stores.end()) {
      WINCERT_ASSIGN_OR_RETURN(auto del, db_.prepare("DELETE FROM stores WHERE id = ?1"));
      WINCERT_TRY(del.bind(1, id).run());
      WINCERT_ASSIGN_OR_RETURN(auto del_items, db_.prepare("DELETE FROM inventory WHERE store_id = ?1"));
      WINCERT_TRY(del_items.bind(1, id).run());
      continue;
    }
    const Store& s = found->second;
    WINCERT_ASSIGN_OR_RETURN(auto put, db_.prepare("INSERT OR REPLACE INTO stores(id, agent_id, orchestrator, "
                                                   "client_machine, store_path, doc) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"));
    WINCERT_TRY(put.bind(1, id)
                    .bind(2, s.agent_id)
                    .bind(3, s.orchestrator)
                    .bind(4, s.client_machine)
                    .bind(5, s.store_path)
                    .bind(6, dump_json(to_document(s)))
                    .run());
  }
  for (const std::string& id : changes.inventories) {
    auto found = state.stores.find(id);
    WINCERT_ASSIGN_OR_RETURN(auto del, db_.prepare("DELETE FROM inventory WHERE store_id = ?1"));
    WINCERT_TRY(del.bind(1, id).run());
    if (found == state.stores.end()) continue;
    std::int64_t position = 0;
    for (const InventoryItem& item : found->second.inventory) {
      WINCERT_ASSIGN_OR_RETURN(auto put,
                               db_.prepare("INSERT INTO inventory(store_id, position, alias, thumbprint, doc) "
                                           "VALUES (?1, ?2, ?3, ?4, ?5)"));
      WINCERT_TRY(put.bind(1, id)
                      .bind(2, position++)
                      .bind(3, item.alias)
                      .bind(4, item.thumbprints.empty() ? std::string() : item.thumbprints.front())
                      .bind(5, dump_json(to_document(item)))
                      .run());
    }
  }
  for (const std::string& id : changes.jobs) {
    auto found = state.jobs.find(id);
    if (found == state.jobs.end()) {
      WINCERT_ASSIGN_OR_RETURN(auto del, db_.prepare("DELETE FROM jobs WHERE id = ?1"));
      WINCERT_TRY(del.bind(1, id).run());
      continue;
    }
    const Job& j = found->second;
    WINCERT_ASSIGN_OR_RETURN(
        auto put,
        db_.prepare(
            "INSERT OR REPLACE INTO jobs(id, store_id, kind, state, open_run, doc) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"));
    WINCERT_TRY(put.bind(1, id)
                    .bind(2, j.store_id)
                    .bind(3, job_kind_name(j.kind))
                    .bind(4, job_state_name(j.state))
                    .bind(5, j.open_run)
                    .bind(6, dump_json(to_document(j)))
                    .run());
  }
  for (const std::int64_t id : changes.history) {
    auto found = state.history.find(id);
    if (found == state.history.end()) continue;  // history is never deleted
    const HistoryEntry& h = found->second;
    WINCERT_ASSIGN_OR_RETURN(auto put, db_.prepare("INSERT OR REPLACE INTO history(job_history_id, job_id, store_id, "
                                                   "agent_id, result, operation_end, doc) VALUES (?1, ?2, ?3, ?4, ?5, "
                                                   "?6, ?7)"));
    WINCERT_TRY(put.bind(1, id)
                    .bind(2, h.job_id)
                    .bind(3, h.store_id)
                    .bind(4, h.agent_id)
                    .bind(5, h.result)
                    .bind(6, h.operation_end)
                    .bind(7, dump_json(to_document(h)))
                    .run());
  }
  for (std::size_t seq = issued_saved_; seq < state.issued.size(); ++seq) {
    const IssuedRecord& r = state.issued[seq];
    WINCERT_ASSIGN_OR_RETURN(auto put, db_.prepare("INSERT OR REPLACE INTO issued(seq, purpose, thumbprint, job_id, "
                                                   "agent_id, doc) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"));
    WINCERT_TRY(put.bind(1, static_cast<std::int64_t>(seq))
                    .bind(2, r.purpose)
                    .bind(3, r.thumbprint)
                    .bind(4, r.job_id)
                    .bind(5, r.agent_id)
                    .bind(6, dump_json(to_document(r)))
                    .run());
  }
  if (state.next_history_id != next_id_saved_) {
    WINCERT_ASSIGN_OR_RETURN(auto put, db_.prepare("INSERT OR REPLACE INTO meta(key, value) VALUES (?1, ?2)"));
    WINCERT_TRY(put.bind(1, std::string_view("next_history_id")).bind(2, state.next_history_id).run());
  }
  return {};
}

}  // namespace wincert::sim::command
