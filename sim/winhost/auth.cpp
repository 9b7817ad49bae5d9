#include "sim/winhost/auth.hpp"

#include <fstream>

#include "common/encoding.hpp"
#include "common/log.hpp"

namespace wincert::sim {

Result<UserDatabase> UserDatabase::load(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Error::not_found("cannot read the users file " + path + ": check that it exists and is readable");
  UserDatabase db;
  std::string line;
  int line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    std::string_view l = trim(line);
    if (l.empty() || l[0] == '#') continue;
    auto first = l.find(':');
    if (first == std::string_view::npos)
      return Error::invalid_argument("users file " + path + " line " + std::to_string(line_no) +
                                     ": expected user:password or DOMAIN:user:password");
    auto second = l.find(':', first + 1);
    if (second == std::string_view::npos) {
      db.add({}, std::string(l.substr(0, first)), std::string(l.substr(first + 1)));
    } else {
      db.add(std::string(l.substr(0, first)), std::string(l.substr(first + 1, second - first - 1)),
             std::string(l.substr(second + 1)));
    }
  }
  return db;
}

void UserDatabase::add(std::string domain, std::string user, std::string password) {
  accounts_.push_back(Account{std::move(domain), std::move(user), Secret(std::move(password))});
}

std::optional<std::string> UserDatabase::verify(const std::string& login, const std::string& password) const {
  std::string domain, user = login;
  if (auto bs = login.find('\\'); bs != std::string::npos) {
    domain = login.substr(0, bs);
    user = login.substr(bs + 1);
  } else if (auto at = login.find('@'); at != std::string::npos) {
    user = login.substr(0, at);
    domain = login.substr(at + 1);
  }
  for (const auto& a : accounts_) {
    if (!iequals(a.user, user)) continue;
    // A domain in the login must match the account's domain (or its DNS form's first label).
    if (!domain.empty() && !a.domain.empty()) {
      std::string first_label = domain.substr(0, domain.find('.'));
      if (!iequals(a.domain, domain) && !iequals(a.domain, first_label)) continue;
    }
    if (a.password.reveal() != password) continue;
    return a.domain.empty() ? a.user : a.domain + "\\" + a.user;
  }
  return std::nullopt;
}

std::vector<std::pair<std::string, std::string>> windows_challenge_headers() {
  return {{"WWW-Authenticate", "Negotiate"}, {"WWW-Authenticate", "Basic realm=\"WSMAN\""}};
}

namespace {

class BasicConnectionAuth final : public ConnectionAuth {
 public:
  BasicConnectionAuth(std::shared_ptr<const UserDatabase> users, BasicAuthOptions options)
      : users_(std::move(users)), options_(options) {}

  AuthDecision authenticate(const HttpRequest& request, const ConnectionInfo& conn) override {
    AuthDecision refused;
    refused.headers = windows_challenge_headers();
    auto it = request.find(http::field::authorization);
    if (it == request.end()) return refused;
    std::string_view value = trim(it->value());
    if (!istarts_with(value, "Basic ")) return refused;  // other schemes: no acceptor yet
    if (!conn.tls && !options_.allow_unencrypted && !options_.accept_any) {
      logger("sim")->info("refused Basic over plain HTTP from {} (start with --allow-unencrypted to allow it)",
                          conn.client_ip);
      return refused;
    }
    auto decoded = base64_decode(trim(value.substr(6)));
    if (!decoded) return refused;
    auto colon = decoded->find(':');
    if (colon == std::string::npos) return refused;
    std::string login = decoded->substr(0, colon);
    Secret password(decoded->substr(colon + 1));
    OPENSSL_cleanse(decoded->data(), decoded->size());
    if (options_.accept_any) return AuthDecision{true, login.empty() ? "anonymous" : login, 200, {}};
    if (users_) {
      if (auto owner = users_->verify(login, password.reveal())) return AuthDecision{true, *owner, 200, {}};
    }
    logger("sim")->info("Basic authentication failed for user '{}' from {}", login, conn.client_ip);
    return refused;
  }

 private:
  std::shared_ptr<const UserDatabase> users_;
  BasicAuthOptions options_;
};

class BasicAuthenticator final : public Authenticator {
 public:
  BasicAuthenticator(std::shared_ptr<const UserDatabase> users, BasicAuthOptions options)
      : users_(std::move(users)), options_(options) {}
  std::unique_ptr<ConnectionAuth> new_connection() override {
    return std::make_unique<BasicConnectionAuth>(users_, options_);
  }

 private:
  std::shared_ptr<const UserDatabase> users_;
  BasicAuthOptions options_;
};

}  // namespace

std::unique_ptr<Authenticator> make_basic_authenticator(std::shared_ptr<const UserDatabase> users,
                                                        BasicAuthOptions options) {
  return std::make_unique<BasicAuthenticator>(std::move(users), options);
}

}  // namespace wincert::sim
