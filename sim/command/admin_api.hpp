// The admin API under /admin/ (JSON over HTTP, PascalCase like Command's own REST API): agents
// (approve, disapprove, reset, auth-certificate renewal), stores, jobs (inventory, add, remove,
// reenrollment; cancel), job history, inventory, issued certificates, the CA, test PFX files, settings,
// counters, fault injection and session/token invalidation. Every route is listed in README.md.
#pragma once

#include <string_view>

#include "sim/command/http_types.hpp"
#include "sim/command/runtime.hpp"

namespace wincert::sim::command {

class AdminApi {
 public:
  explicit AdminApi(Runtime& runtime) : rt_(runtime) {}
  // path: below "/admin/" ("agents/ID/approve"); query: after '?', undecoded.
  HttpReply handle(http::verb method, std::string_view path, std::string_view query, std::string_view body);

 private:
  HttpReply agents(http::verb method, const std::vector<std::string>& parts, const Json& body);
  HttpReply stores(http::verb method, const std::vector<std::string>& parts, const Json& body);
  HttpReply create_store(const Json& body);
  HttpReply jobs(http::verb method, const std::vector<std::string>& parts, const Json& body,
                 const std::map<std::string, std::string>& query);
  HttpReply create_job(const Json& body);
  HttpReply history(const std::map<std::string, std::string>& query);
  HttpReply make_pfx(const Json& body);
  HttpReply settings(http::verb method, const Json& body);
  HttpReply faults(http::verb method, const Json& body);
  // The orchestrator a store's jobs go to (by id, or by the name it was created for); null if none yet.
  Agent* store_agent(const Store* store);

  Runtime& rt_;
};

}  // namespace wincert::sim::command
