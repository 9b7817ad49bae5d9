// TLS set-up shared by every HTTPS client of the agent (WinRM transport, Command client: TLS 1.2+, peer
// verification against a CA file or the system store, an optional client certificate) and by the simulators'
// HTTPS listeners. The option names in messages are the caller's ("--ca-file", "ServerCaFile").
#pragma once

#include <boost/asio/ssl/context.hpp>

#include <string>

#include "common/result.hpp"

namespace wincert::tls {

struct ClientSettings {
  bool verify_peer = true;
  std::string ca_file;             // PEM bundle of trusted CAs; empty = the system store
  std::string client_certificate;  // PEM chain for client-certificate authentication (both or neither)
  std::string client_key;          // unencrypted PEM key of client_certificate
  // How the caller's configuration names these, for messages.
  std::string ca_file_option = "the CA file";
  std::string client_certificate_option = "the client certificate";
  std::string client_key_option = "the client key";
};

Status configure_client(boost::asio::ssl::context& context, const ClientSettings& settings);

// A server context (TLS 1.2+) with its certificate chain and key (PEM files, both required).
Status configure_server(boost::asio::ssl::context& context, const std::string& certificate_file,
                        const std::string& key_file);

}  // namespace wincert::tls
