// What the server hands to the application and gets back: a parsed request plus facts about its
// connection, and a reply that may also ask for a delay or for the connection to be dropped.
#pragma once

#include <boost/beast/http.hpp>

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "sim/command/json_util.hpp"

namespace wincert::sim::command {

namespace http = boost::beast::http;
using HttpRequest = http::request<http::string_body>;

struct ConnectionInfo {
  std::string remote_address;
  bool loopback = false;
  bool tls = false;
  std::string client_certificate_der;  // verified against --client-ca by the TLS handshake
};

struct HttpReply {
  unsigned status = 200;
  std::string body;
  std::string content_type = "application/json; charset=utf-8";
  std::vector<std::pair<std::string, std::string>> headers;
  bool drop_connection = false;        // fault injection: close without any response
  std::chrono::milliseconds delay{0};  // fault injection: answer this much later

  static HttpReply json(unsigned status, const Json& body) {
    HttpReply reply;
    reply.status = status;
    reply.body = dump_json(body);
    return reply;
  }
  // {"Message": text}, the shape ASP.NET uses for plain errors.
  static HttpReply message(unsigned status, const std::string& text) {
    return json(status, object_of("Message", text));
  }
};

}  // namespace wincert::sim::command
