#include "sim/command/app.hpp"

#include <openssl/crypto.h>

#include "common/encoding.hpp"
#include "common/log.hpp"

namespace wincert::sim::command {
namespace {

auto log() { return logger("command-sim"); }

// The route below the base path when `path` is inside it ("/KeyfactorAgents/Session/Register" ->
// "Session/Register"), nullopt otherwise. Path matching is case-insensitive like IIS.
std::optional<std::string_view> below_base(std::string_view path, const std::string& base) {
  if (base == "/" || base.empty()) return path.substr(1);
  if (path.size() <= base.size() + 1 || !istarts_with(path, base) || path[base.size()] != '/') return std::nullopt;
  return path.substr(base.size() + 1);
}

bool token_matches(const std::string& expected, std::string_view given) {
  return expected.size() == given.size() && CRYPTO_memcmp(expected.data(), given.data(), given.size()) == 0;
}

}  // namespace

HttpReply App::handle(const HttpRequest& request, const ConnectionInfo& connection) {
  const std::string_view target = request.target();
  const auto q = target.find('?');
  const std::string_view path = target.substr(0, q);
  const std::string_view query = q == std::string_view::npos ? std::string_view{} : target.substr(q + 1);
  HttpReply reply;
  try {
    if (path == "/admin" || istarts_with(path, "/admin/")) {
      ++rt_.counters.requests["admin"];
      reply = handle_admin(request, connection, path, query);
    } else {
      reply = handle_agent_facing(request, connection, path);
    }
  } catch (const std::exception& e) {
    // A safety net: no request, however malformed, may take the simulator down.
    log()->error("{} {} failed unexpectedly: {}", std::string(request.method_string()), std::string(path), e.what());
    reply = HttpReply::message(500, "internal error in command-sim (see its log)");
  }
  // One transaction per request, committed before the response goes out: what an agent is told has been
  // recorded survives a kill -9. A request that changed nothing commits nothing.
  if (auto saved = rt_.commit(); !saved && !reply.drop_connection)
    reply = HttpReply::message(500, "command-sim could not save its state (see its log): " + saved.error().message);
  if (!reply.drop_connection) ++rt_.counters.responses[std::to_string(reply.status)];
  log()->debug("{} {} from {} -> {}", std::string(request.method_string()), std::string(path),
               connection.remote_address, reply.drop_connection ? "dropped" : std::to_string(reply.status));
  return reply;
}

void App::note_oversized(std::string_view target) {
  ++rt_.counters.responses["413"];
  log()->info("request to {} exceeds the body limit: 413", std::string(target.substr(0, target.find('?'))));
}

HttpReply App::handle_admin(const HttpRequest& request, const ConnectionInfo& connection, std::string_view path,
                            std::string_view query) {
  if (!admin_token_.empty()) {
    std::string_view given;
    if (auto it = request.find("X-Admin-Token"); it != request.end()) given = it->value();
    if (auto it = request.find(http::field::authorization); it != request.end() && istarts_with(it->value(), "Bearer "))
      given = trim(it->value().substr(7));
    if (!token_matches(admin_token_.reveal(), given)) {
      HttpReply reply = HttpReply::message(401, "the admin API needs the admin token (X-Admin-Token or Bearer)");
      reply.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"command-sim admin\"");
      return reply;
    }
  } else if (!connection.loopback) {
    return HttpReply::message(403, "the admin API answers loopback clients only (or set --admin-token-env)");
  }
  const std::string_view below = path.size() > 7 ? path.substr(7) : std::string_view{};
  return admin_.handle(request.method(), below, query, request.body());
}

HttpReply App::handle_agent_facing(const HttpRequest& request, const ConnectionInfo& connection,
                                   std::string_view path) {
  const bool token_endpoint = path == rt_.auth.token_path();
  std::optional<std::string> route;
  if (!token_endpoint) {
    if (auto below = below_base(path, rt_.settings.base_path)) route = AgentApi::canonical_route(*below);
  }
  ++rt_.counters.requests[token_endpoint ? "oauth/token" : route ? *route : "unknown"];

  const Faults::Decision fault = rt_.faults.on_request(path);
  HttpReply reply;
  if (fault.drop) {
    ++rt_.counters.dropped_connections;
    log()->info("dropping the connection of {} {} (fault injection)", std::string(request.method_string()),
                std::string(path));
    reply.drop_connection = true;
    return reply;
  }
  if (fault.fail_status != 0) {
    ++rt_.counters.injected_errors;
    log()->info("answering {} {} with HTTP {} (fault injection)", std::string(request.method_string()),
                std::string(path), fault.fail_status);
    reply = HttpReply::message(fault.fail_status, "Service Unavailable (injected fault)");
    if (fault.fail_status == 503) reply.headers.emplace_back("Retry-After", "1");
  } else if (token_endpoint) {
    bool auth_failed = false;
    reply = rt_.auth.token_endpoint(request, auth_failed);
    if (auth_failed) ++rt_.counters.auth_failures;
    if (reply.status == 200) ++rt_.counters.tokens_issued;
  } else if (!route) {
    reply = HttpReply::message(404, "No HTTP resource was found that matches the request URI.");
  } else if (request.method() != http::verb::post) {
    reply = HttpReply::message(405, "The Orchestrators API takes POST requests only.");
    reply.headers.emplace_back("Allow", "POST");
  } else {
    AuthOutcome auth = rt_.auth.authenticate(request, connection);
    if (!auth.principal) {
      ++rt_.counters.auth_failures;
      log()->info("refused {} from {}: {}", std::string(path), connection.remote_address, auth.reason);
      reply = std::move(auth.refusal);
    } else {
      std::string host = "127.0.0.1";
      if (auto it = request.find(http::field::host); it != request.end() && !it->value().empty())
        host = std::string(it->value());
      const std::string origin = std::string(connection.tls ? "https" : "http") + "://" + host;
      reply = agent_.handle(*route, request.body(), *auth.principal, origin);
    }
  }
  if (fault.replace_body) {
    ++rt_.counters.injected_errors;
    log()->info("answering {} {} with a replaced body of {} bytes (fault injection)",
                std::string(request.method_string()), std::string(path), fault.replace_body->size());
    reply.status = 200;
    reply.body = std::move(*fault.replace_body);
  }
  reply.delay = rt_.faults.latency();
  return reply;
}

}  // namespace wincert::sim::command
