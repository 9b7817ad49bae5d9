// winhost-sim's coded errors (sim/winhost/error_reply.hpp and the loaders): the one mapping from a code to
// the HTTP status or WS-Man fault a Windows host sends, and the code of each start-up failure.
#include <gmock/gmock.h>

#include <filesystem>
#include <fstream>

#include "sim/winhost/auth.hpp"
#include "sim/winhost/error_reply.hpp"
#include "sim/winhost/server.hpp"
#include "sim/winhost/soap.hpp"
#include "sim/winhost/windows_model.hpp"
#include "tests/support/result_matchers.hpp"

namespace wincert::sim {
namespace {

namespace fs = std::filesystem;

TEST(WinhostErrorReply, HttpStatusOfEachCode) {
  EXPECT_EQ(http_status_for(ErrorCode::kInvalidArgument), 400u);  // a body that cannot be unwrapped
  EXPECT_EQ(http_status_for(ErrorCode::kUnauthenticated), 401u);
  EXPECT_EQ(http_status_for(ErrorCode::kPermissionDenied), 403u);
  EXPECT_EQ(http_status_for(ErrorCode::kNotFound), 404u);
  EXPECT_EQ(http_status_for(ErrorCode::kInternal), 500u);
  EXPECT_EQ(http_status_for(ErrorCode::kUnavailable), 503u);
  EXPECT_EQ(http_status_for(ErrorCode::kDeadlineExceeded), 504u);
}

TEST(WinhostErrorReply, AnUnreadableRequestIsASchemaValidationFault) {
  auto parsed = parse_request("<NotAnEnvelope/>");
  ASSERT_THAT(parsed, HasCode(ErrorCode::kInvalidArgument));
  const Fault fault = wsman_fault_for(parsed.error());
  EXPECT_EQ(fault.code, "s:Sender");
  EXPECT_EQ(fault.subcode, "w:SchemaValidationError");
  // The fault tells the client what is wrong: the message is the behaviour here.
  EXPECT_NE(fault.message.find("SOAP 1.2 Envelope"), std::string::npos) << fault.message;
  EXPECT_EQ(wsman_fault_for(Error::deadline_exceeded("late")).subcode, "w:TimedOut");
  EXPECT_THAT(parse_request("<"), HasCode(ErrorCode::kInvalidArgument));
}

TEST(WinhostErrors, StartUpFailuresHaveTheirCodes) {
  const fs::path dir = fs::temp_directory_path() / ("winhost-errors-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  EXPECT_THAT(parse_listen("127.0.0.1"), HasCode(ErrorCode::kInvalidArgument));
  EXPECT_THAT(parse_listen("127.0.0.1:70000"), HasCode(ErrorCode::kInvalidArgument));
  EXPECT_THAT(UserDatabase::load((dir / "absent-users").string()), HasCode(ErrorCode::kNotFound));
  EXPECT_THAT(tls_server_end_point_hash((dir / "absent.pem").string()), HasCode(ErrorCode::kNotFound));
  const auto users = (dir / "users").string();
  std::ofstream(users) << "no-password-here\n";
  EXPECT_THAT(UserDatabase::load(users), HasCode(ErrorCode::kInvalidArgument));
  const auto model = (dir / "model.json").string();
  std::ofstream(model) << "[1, 2]";
  EXPECT_THAT(WindowsModel::load(model), HasCode(ErrorCode::kInvalidArgument));
  std::error_code ec;
  fs::remove_all(dir, ec);
}

}  // namespace
}  // namespace wincert::sim
