// Peak memory of taking in one job configuration from Command (issue 12, defect 8), as the agent did
// before and does now. Run one mode per process under /usr/bin/time -v (bench/results/peer_json_memory.md):
//   peer_json_memory_bench before FILE   text -> json -> copy of the configuration -> dump() -> parse again
//   peer_json_memory_bench after FILE    text -> parse_peer_json (limits, LastInventory read while parsing)
//                                        -> moved -> parse_job_config_document
// FILE is a job configuration as Command sends it; make_file writes a 60 MB one from a real fixture.
#include <sys/resource.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "agent/command_client.hpp"
#include "common/peer_json.hpp"
#include "jobs/job_config.hpp"

namespace {

std::string read_file(const char* path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

long peak_rss_kb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss;
}

// The fixture's inventory job with LastInventory grown to `bytes` (what a large store's job looks like).
int make_file(const char* fixture, const char* out_path, std::size_t bytes) {
  auto doc = nlohmann::ordered_json::parse(read_file(fixture).substr(3));  // fixtures start with a BOM
  auto& items = doc["LastInventory"];
  const nlohmann::ordered_json first = items.at(0);
  std::size_t size = doc.dump().size();
  const std::size_t item_size = first.dump().size() + 1;
  for (std::size_t i = 0; size < bytes; ++i, size += item_size) items.push_back(first);
  std::ofstream(out_path, std::ios::binary) << doc.dump();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace wincert;
  if (argc == 5 && std::string(argv[1]) == "make_file")
    return make_file(argv[2], argv[3], std::stoull(argv[4]) * 1000 * 1000);
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s before|after FILE | make_file FIXTURE OUT MB\n", argv[0]);
    return 2;
  }
  const std::string mode = argv[1];
  std::string body = read_file(argv[2]);
  const std::size_t size = body.size();
  std::size_t items = 0;
  if (mode == "before") {
    // The code before the fix: CommandClient::call parsed, job_configuration copied the configuration
    // out of the reply, and the agent loop dumped it and parsed the text again.
    nlohmann::json doc = nlohmann::json::parse(body, nullptr, false);
    nlohmann::json config = doc;
    const std::string text = config.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    auto parsed = jobs::parse_job_config(text);
    items = parsed.ok() ? parsed->last_inventory.size() : 0;
  } else if (mode == "after") {
    // As CommandClient::job_configuration: LastInventory is read while the text is parsed, never a tree.
    jobs::LastInventoryReader last_inventory;
    auto doc = parse_peer_ordered_json(body, peer_json_limits::kJobConfiguration, "the job configuration",
                                       last_inventory.callback());
    if (!doc.ok()) {
      std::fprintf(stderr, "%s\n", doc.error().message.c_str());
      return 1;
    }
    body = std::string();  // CommandClient::call frees the text once parsed
    agent::JobEntry job;
    job.job_id = "bench";
    auto reply = agent::interpret_job_configuration(std::move(doc.value()), job);
    auto parsed = jobs::parse_job_config_document(std::move(reply.config), &last_inventory);
    items = parsed.ok() ? parsed->last_inventory.size() : 0;
  } else {
    return 2;
  }
  const long peak = peak_rss_kb();
  std::printf("%s: %zu bytes, %zu LastInventory items, peak RSS %ld MB = %.1f x the size\n", mode.c_str(), size, items,
              peak / 1024, static_cast<double>(peak) * 1024.0 / static_cast<double>(size));
  return 0;
}
