#include "tests/agent/daemon_test_support.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>

#include "common/encoding.hpp"

namespace wincert::agent::testing {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using nlohmann::json;

namespace {
constexpr auto kUseTuple = net::as_tuple(net::use_awaitable);
}

json FakeRequest::json() const { return json::parse(body, nullptr, false); }

std::string FakeRequest::header(const std::string& lower_name) const {
  auto it = headers.find(lower_name);
  return it == headers.end() ? std::string() : it->second;
}

FakeResponse FakeResponse::json(const nlohmann::json& body, unsigned status) {
  FakeResponse r;
  r.status = status;
  r.body = body.dump();
  return r;
}

struct FakeServer::Impl {
  net::io_context io{1};
  tcp::acceptor acceptor{io};
  std::thread thread;
  mutable std::mutex mutex;
  Handler handler;
  std::vector<FakeRequest> requests;
  std::atomic<int>* connections = nullptr;

  net::awaitable<void> serve(tcp::socket socket) {
    beast::tcp_stream stream(std::move(socket));
    beast::flat_buffer buffer;
    for (;;) {
      http::request<http::string_body> req;
      auto [ec, n] = co_await http::async_read(stream, buffer, req, kUseTuple);
      (void)n;
      if (ec) break;
      FakeRequest request;
      request.method = std::string(req.method_string());
      request.target = std::string(req.target());
      request.body = req.body();
      for (const auto& field : req) request.headers[to_lower(field.name_string())] = std::string(field.value());
      Handler h;
      {
        std::lock_guard lock(mutex);
        requests.push_back(request);
        h = handler;
      }
      FakeResponse response = h ? h(request) : FakeResponse{404, "{}"};
      if (response.delay.count() > 0) {
        net::steady_timer timer(co_await net::this_coro::executor);
        timer.expires_after(response.delay);
        co_await timer.async_wait(kUseTuple);
      }
      if (response.drop) {
        beast::error_code ignored;
        stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
        stream.close();
        break;
      }
      http::response<http::string_body> res{static_cast<http::status>(response.status), 11};
      res.set(http::field::content_type, response.content_type);
      res.keep_alive(!response.close && req.keep_alive());
      res.body() = response.body;
      res.prepare_payload();
      auto [write_ec, written] = co_await http::async_write(stream, res, kUseTuple);
      (void)written;
      if (write_ec || !res.keep_alive()) break;
    }
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  }

  net::awaitable<void> accept_loop() {
    for (;;) {
      auto [ec, socket] = co_await acceptor.async_accept(kUseTuple);
      if (ec) co_return;
      ++*connections;
      net::co_spawn(io, serve(std::move(socket)), net::detached);
    }
  }
};

FakeServer::FakeServer(Handler handler) : impl_(std::make_unique<Impl>()) {
  impl_->handler = std::move(handler);
  impl_->connections = &connections_;
  tcp::endpoint endpoint(net::ip::make_address("127.0.0.1"), 0);
  impl_->acceptor.open(endpoint.protocol());
  impl_->acceptor.set_option(tcp::acceptor::reuse_address(true));
  impl_->acceptor.bind(endpoint);
  impl_->acceptor.listen();
  port_ = impl_->acceptor.local_endpoint().port();
  net::co_spawn(impl_->io, impl_->accept_loop(), net::detached);
  impl_->thread = std::thread([this] { impl_->io.run(); });
}

FakeServer::~FakeServer() {
  impl_->io.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

std::string FakeServer::url(const std::string& path) const {
  return "http://127.0.0.1:" + std::to_string(port_) + path;
}

std::vector<FakeRequest> FakeServer::requests() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->requests;
}

std::size_t FakeServer::count(const std::string& target_prefix) const {
  std::lock_guard lock(impl_->mutex);
  std::size_t n = 0;
  for (const auto& r : impl_->requests) n += r.target.rfind(target_prefix, 0) == 0;
  return n;
}

void FakeServer::set_handler(Handler handler) {
  std::lock_guard lock(impl_->mutex);
  impl_->handler = std::move(handler);
}

// ---- files ----

TempDir::TempDir() {
  std::random_device rd;
  const auto base = std::filesystem::temp_directory_path() /
                    ("wincert-daemon-test-" + std::to_string(rd()) + "-" + std::to_string(rd()));
  std::filesystem::create_directories(base);
  path_ = base.string();
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw std::runtime_error("cannot write " + path);
  out << text;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// ---- slow sessions ----

namespace {

class SlowStore final : public certstore::CertStore {
 public:
  SlowStore(SlowSessions& owner, std::string host) : owner_(owner), host_(std::move(host)) {}

  certstore::Task<certstore::StoreInventory> inventory(std::string store) override {
    auto& h = owner_.hosts[host_];
    ++h.jobs;
    h.max = std::max(h.max, ++h.current);
    owner_.max_total = std::max(owner_.max_total, ++owner_.current_total);
    net::steady_timer timer(co_await net::this_coro::executor);
    timer.expires_after(owner_.delay_);
    co_await timer.async_wait(kUseTuple);
    --owner_.hosts[host_].current;
    --owner_.current_total;
    certstore::StoreInventory inv;
    inv.store = store;
    for (int i = 0; i < owner_.inventory_items; ++i) {
      certstore::InventoryEntry e;
      const std::string thumb = to_upper(hex_lower(host_ + "-" + std::to_string(i))).substr(0, 40);
      e.der = "DER-of-" + host_ + "-" + std::to_string(i);
      e.thumbprint = thumb;
      e.has_private_key = i % 2 == 0;
      inv.entries.push_back(std::move(e));
    }
    co_return inv;
  }
  certstore::Task<certstore::AddCertificateResult> add(certstore::AddCertificateRequest) override {
    co_return Error::failed_precondition("not supported by the fake");
  }
  certstore::Task<certstore::RemoveResult> remove(certstore::RemoveRequest) override {
    co_return Error::failed_precondition("not supported by the fake");
  }
  certstore::Task<certstore::CertificateRequest> create_csr(certstore::CsrRequest) override {
    co_return Error::failed_precondition("not supported by the fake");
  }
  certstore::Task<certstore::InstallIssuedResult> install_issued(certstore::InstallIssuedRequest) override {
    co_return Error::failed_precondition("not supported by the fake");
  }

 private:
  SlowSessions& owner_;
  std::string host_;
};

// A host whose certificate store is slow; these tests run inventories only.
class SlowHostSession final : public certstore::HostSession {
 public:
  SlowHostSession(SlowSessions& owner, std::string host) : certs_(owner, std::move(host)) {}
  certstore::CertStore& certs() override { return certs_; }
  certstore::IisBindings& iis() override { throw std::logic_error("the slow host has only a certificate store"); }
  certstore::SqlBindings& sql() override { throw std::logic_error("the slow host has only a certificate store"); }

 private:
  SlowStore certs_;
};

}  // namespace

net::awaitable<Result<jobs::HostSessionHandle>> SlowSessions::open(const jobs::Target& target) {
  const std::string host = target.local ? "localhost" : target.remote.host;
  co_return jobs::HostSessionHandle(std::make_shared<SlowHostSession>(*this, host));
}

json inventory_job_config(const std::string& job_id, const std::string& host, std::int64_t history_id,
                          const std::string& capability) {
  json properties = {{"spnwithport", "false"},    {"WinRm Protocol", "https"}, {"WinRm Port", "5986"},
                     {"ServerUsername", nullptr}, {"ServerPassword", nullptr}, {"ServerUseSsl", "true"}};
  return json{{"LastInventory", json::array()},
              {"CertificateStoreDetails",
               {{"ClientMachine", host},
                {"StorePath", "My"},
                {"StorePassword", ""},
                {"Properties", properties.dump()},
                {"Type", 104}}},
              {"JobCancelled", false},
              {"ServerError", nullptr},
              {"JobHistoryId", history_id},
              {"RequestStatus", 1},
              {"ServerUsername", "svc-winrm"},
              {"ServerPassword", "winrm-pass-SECRET"},
              {"UseSSL", true},
              {"JobProperties", nullptr},
              {"JobTypeId", "00000000-0000-0000-0000-000000000000"},
              {"JobId", job_id},
              {"Capability", capability}};
}

}  // namespace wincert::agent::testing
