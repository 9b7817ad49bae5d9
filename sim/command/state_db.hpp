// command-sim's persistent state in SQLite (STATE_DIR/state.db, WAL mode): agents, stores, their inventory,
// jobs, job history and issued certificates, one table each with the indexes listed in README.md.
//
// The simulator keeps State in memory as its working set (every read is served from there) and writes
// each change through to the database: handlers name what they changed in a StateChanges, and the request's
// end commits all of it as ONE transaction before the response goes out. At start the State is loaded back
// from the database, so whatever an agent was told is recorded survives a kill -9.
#pragma once

#include <cstddef>
#include <cstdint>
#include <set>
#include <string>

#include "common/result.hpp"
#include "sim/command/sqlite_db.hpp"
#include "sim/command/state.hpp"

namespace wincert::sim::command {

// What one request changed, by id; the rows are taken from State at commit (an id no longer in State is
// a deletion). Issued certificates and next_history_id need no entry: StateDb tracks what it wrote.
struct StateChanges {
  std::set<std::string> agents;
  std::set<std::string> stores;       // the store row
  std::set<std::string> inventories;  // the store's inventory rows (replaced as a whole)
  std::set<std::string> jobs;
  std::set<std::int64_t> history;

  bool empty() const {
    return agents.empty() && stores.empty() && inventories.empty() && jobs.empty() && history.empty();
  }
  void merge(const StateChanges& other);
};

// PRAGMA synchronous for the WAL: kNormal fsyncs at checkpoints only (a kill -9 loses nothing, a power cut
// may lose the last transactions), kFull fsyncs the WAL at every commit (nothing acknowledged is lost).
enum class Durability { kNormal, kFull };

class StateDb {
 public:
  // Opens STATE_DIR/state.db (created 0600 when missing, with the schema). When there is no database yet
  // but a state.json from an older command-sim, it is imported once and renamed to state.json.imported.
  static Result<StateDb> open(const std::string& dir, Durability durability);

  Result<State> load();
  // Writes the rows named in `changes`, new issued records and next_history_id in one transaction.
  Status commit(const State& state, const StateChanges& changes);
  // Every row of `state` (the import of an older state.json).
  Status write_all(const State& state);

  const std::string& path() const { return db_.path(); }

 private:
  explicit StateDb(SqliteDatabase db) : db_(std::move(db)) {}
  Status create_schema(Durability durability);
  Status write(const State& state, const StateChanges& changes);

  SqliteDatabase db_;
  std::size_t issued_saved_ = 0;     // state.issued[0, issued_saved_) are in the database
  std::int64_t next_id_saved_ = -1;  // next_history_id as the database has it
};

}  // namespace wincert::sim::command
