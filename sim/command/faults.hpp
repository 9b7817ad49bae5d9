// Fault injection for agent-facing requests (the Orchestrators API and the token endpoint; never the
// admin API, so a test can always clear what it set): error statuses for the next N requests, dropped
// connections (closed without a response) for N requests or for T seconds, added latency, refused
// completions, and replaced bodies (garbage, huge, deep or wrong-typed JSON after the request was
// handled). Kept in memory only.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.hpp"
#include "sim/command/json_util.hpp"

namespace wincert::sim::command {

class Faults {
 public:
  struct Decision {
    bool drop = false;                        // close the connection without answering
    unsigned fail_status = 0;                 // answer with this status instead of handling the request
    std::optional<std::string> replace_body;  // handle the request, then answer 200 with this body
  };
  // Consults (and counts down) the drop and fail knobs for one request to `path`.
  Decision on_request(std::string_view path);
  // 0, or the status (500/503) a completion must get instead of being recorded.
  unsigned on_completion();
  std::chrono::milliseconds latency() const { return std::chrono::milliseconds(latency_ms_); }

  // POST /admin/faults: sets the knobs present in the body, leaves the others as they are.
  Status configure(const Json& body);
  void clear() { *this = Faults{}; }
  Json to_json() const;

 private:
  int fail_next_ = 0;
  unsigned fail_status_ = 503;
  std::string fail_match_;
  int drop_next_ = 0;
  std::string drop_match_;
  std::chrono::steady_clock::time_point drop_until_{};
  long long latency_ms_ = 0;
  int reject_completions_ = 0;
  unsigned reject_status_ = 500;
  int replace_next_ = 0;
  std::string replace_match_;
  std::string replace_body_;
};

}  // namespace wincert::sim::command
