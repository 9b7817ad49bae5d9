// command-sim's coded errors (sim/command/error_reply.hpp, durable_file, server, the parsers): what code
// each failure has, and the one mapping from a code to the HTTP status the sim answers with.
#include <gmock/gmock.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <cerrno>
#include <filesystem>
#include <fstream>

#include "sim/command/app.hpp"
#include "sim/command/auth.hpp"
#include "sim/command/ca.hpp"
#include "sim/command/durable_file.hpp"
#include "sim/command/error_reply.hpp"
#include "sim/command/json_util.hpp"
#include "sim/command/schedule.hpp"
#include "sim/command/server.hpp"
#include "tests/support/result_matchers.hpp"

namespace wincert::sim::command {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

struct TempDir {
  fs::path path = fs::temp_directory_path() / ("command-sim-errors-" + std::to_string(::getpid()));
  TempDir() { fs::create_directories(path); }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

TEST(CommandSimErrorReply, EachCodeHasTheStatusAnAspNetApiAnswers) {
  EXPECT_EQ(http_status_for(ErrorCode::kInvalidArgument), 400u);
  EXPECT_EQ(http_status_for(ErrorCode::kFailedPrecondition), 400u);
  EXPECT_EQ(http_status_for(ErrorCode::kUnauthenticated), 401u);
  EXPECT_EQ(http_status_for(ErrorCode::kPermissionDenied), 403u);
  EXPECT_EQ(http_status_for(ErrorCode::kNotFound), 404u);
  EXPECT_EQ(http_status_for(ErrorCode::kAlreadyExists), 409u);
  EXPECT_EQ(http_status_for(ErrorCode::kAborted), 409u);
  EXPECT_EQ(http_status_for(ErrorCode::kResourceExhausted), 429u);
  EXPECT_EQ(http_status_for(ErrorCode::kInternal), 500u);
  EXPECT_EQ(http_status_for(ErrorCode::kUnavailable), 503u);
  EXPECT_EQ(http_status_for(ErrorCode::kCancelled), 503u);
  EXPECT_EQ(http_status_for(ErrorCode::kDeadlineExceeded), 504u);
}

TEST(CommandSimErrorReply, ErrorReplyCarriesTheMessageAsAspNetDoes) {
  const HttpReply reply = error_reply(Error::invalid_argument("Schedule: bad"));
  EXPECT_EQ(reply.status, 400u);
  auto body = parse_json(reply.body);
  ASSERT_THAT(body, IsOk());
  EXPECT_EQ((*body)["Message"], "Schedule: bad");
  EXPECT_EQ(error_reply(Error::internal("cannot build the PFX")).status, 500u);
}

TEST(CommandSimDurableFile, FailuresAreCodedFromErrno) {
  TempDir dir;
  const auto missing = (dir.path / "absent.json").string();
  EXPECT_THAT(read_small_file(missing, 1024),
              ErrorWith(ErrorCode::kNotFound, SystemStatus(SystemStatusKind::kErrno, ENOENT)));
  EXPECT_THAT(write_file_durably((dir.path / "no-such-dir" / "state.json").string(), "{}"),
              ErrorWith(ErrorCode::kNotFound, SystemStatus(SystemStatusKind::kErrno, ENOENT)));
  const auto big = (dir.path / "big.json").string();
  ASSERT_THAT(write_file_durably(big, std::string(2048, 'x')), IsOk());
  auto too_big = read_small_file(big, 1024);
  EXPECT_THAT(too_big, HasCode(ErrorCode::kInvalidArgument));
  // The message names the file: a person has to find it.
  EXPECT_THAT(too_big.error().message, HasSubstr(big));
}

TEST(CommandSimParsers, MalformedInputIsInvalidArgument) {
  EXPECT_THAT(parse_listen("no-port"), HasCode(ErrorCode::kInvalidArgument));
  EXPECT_THAT(parse_listen("127.0.0.1:99999"), HasCode(ErrorCode::kInvalidArgument));
  EXPECT_THAT(parse_json("{"), HasCode(ErrorCode::kInvalidArgument));
  EXPECT_THAT(get_int(Json{{"Count", "x"}}, "Count"), HasCode(ErrorCode::kInvalidArgument));
  EXPECT_THAT(parse_schedule_string("X_1"), HasCode(ErrorCode::kInvalidArgument));
  const Json weekly = {{"Weekly", {{"Days", "Monday"}, {"Time", "10:00"}}}};
  EXPECT_THAT(schedule_from_json(&weekly), HasCode(ErrorCode::kInvalidArgument));
  AuthOptions auth;
  auth.basic = true;
  EXPECT_THAT(AgentAuthenticator::create(auth), HasCode(ErrorCode::kInvalidArgument));
}

TEST(CommandSimCa, ABrokenRequestOrCaFileIsInvalidArgument) {
  TempDir dir;
  auto ca = CertificateAuthority::load_or_create(dir.path.string(), "", "");
  ASSERT_THAT(ca, IsOk());
  EXPECT_THAT(ca->sign_request("not a CSR", 30, CertificateUse::kServerOnly), HasCode(ErrorCode::kInvalidArgument));
  EXPECT_THAT(CertificateAuthority::load_or_create(dir.path.string(), "ca.pem", ""),
              HasCode(ErrorCode::kInvalidArgument));
  const auto garbage = (dir.path / "garbage.pem").string();
  std::ofstream(garbage) << "not PEM";
  EXPECT_THAT(CertificateAuthority::load_or_create(dir.path.string(), garbage, garbage),
              HasCode(ErrorCode::kInvalidArgument));
}

struct NoRequests : RequestHandler {
  HttpReply handle(const HttpRequest&, const ConnectionInfo&) override { return HttpReply::message(500, "unused"); }
  void note_oversized(std::string_view) override {}
};

TEST(CommandSimServer, APortInUseIsUnavailableWithTheErrno) {
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::acceptor taken(ioc, {boost::asio::ip::make_address("127.0.0.1"), 0});
  ServerOptions options;
  options.port = taken.local_endpoint().port();
  NoRequests handler;
  Server server(ioc, options, handler);
  EXPECT_THAT(server.start(), ErrorWith(ErrorCode::kUnavailable, SystemStatus(SystemStatusKind::kErrno, EADDRINUSE)));
}

}  // namespace
}  // namespace wincert::sim::command
