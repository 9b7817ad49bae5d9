// The WinRS resource (…/windows/shell/cmd) and the WS-Man config resource of the simulated host:
// Create/Command/Send/Receive/Signal/Delete with real faults, OperationTimeout long polls held on timers,
// MaxShellsPerUser quota and IdleTimeOut. Single-threaded: everything runs on one io_context thread.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "sim/winhost/handler.hpp"
#include "sim/winhost/programs.hpp"
#include "sim/winhost/stats.hpp"

namespace wincert::sim {

class WindowsModel;
class PsrpService;

struct WinrsOptions {
  int max_shells_per_user = 30;
  int max_envelope_kb = 500;
  long long max_timeout_ms = 60000;             // MaxTimeoutms
  long long default_idle_timeout_ms = 7200000;  // Winrs IdleTimeout
  long long ps_start_ms = 0;                    // --ps-start-ms: charged for each powershell.exe started
};

class WinrsService final : public WsmanHandler {
 public:
  WinrsService(boost::asio::io_context& ioc, WindowsModel& model, Stats& stats, WinrsOptions options);
  ~WinrsService() override;

  void handle(const RequestContext& ctx, std::string body, ReplyCallback done) override;
  void shutdown() override;

  std::size_t shell_count() const { return shells_.size(); }
  // Requests for the PowerShell resource URIs (…/powershell/<name>) go to this handler (PSRP over WS-Man).
  void set_powershell_handler(PsrpService* handler) { powershell_ = handler; }
  // The MaxShellsPerUser counts, shared with the PowerShell handler.
  std::map<std::string, int>& shells_per_owner() { return shells_per_owner_; }

 private:
  struct HeldReceive {
    ReplyCallback done;
    std::string relates_to;
    std::string machine;
    std::vector<std::string> streams;  // in DesiredStream order
    long long budget = 0;
    std::unique_ptr<boost::asio::steady_timer> timer;
  };
  struct Chunk {
    std::string stream;
    std::string data;
  };
  struct Command {
    std::string id;
    std::string shell_id;
    std::string command;
    std::vector<std::string> arguments;
    bool skip_cmd_shell = false;
    bool started = false;
    bool stdin_closed = false;
    std::string stdin_data;
    std::vector<OutputStep> steps;
    std::size_t next_step = 0;
    bool finished = false;
    int exit_code = 0;
    std::deque<Chunk> pending;
    std::unique_ptr<boost::asio::steady_timer> sleep_timer;
    std::unique_ptr<HeldReceive> held;
  };
  struct Shell {
    std::string id;
    std::string owner;
    std::string client_ip;
    ProcessContext process;
    std::string input_streams = "stdin";
    std::string output_streams = "stdout stderr";
    long long idle_timeout_ms = 0;
    std::chrono::steady_clock::time_point created;
    std::chrono::steady_clock::time_point last_activity;
    std::map<std::string, std::shared_ptr<Command>> commands;
  };

  HttpReply on_create(const WsmanRequest& req, const RequestContext& ctx, const std::string& machine);
  HttpReply on_delete(const WsmanRequest& req, const std::string& machine);
  HttpReply on_command(const WsmanRequest& req, Shell& shell, const std::string& machine);
  HttpReply on_send(const WsmanRequest& req, Shell& shell, const std::string& machine);
  HttpReply on_signal(const WsmanRequest& req, Shell& shell, const std::string& machine);
  void on_receive(const WsmanRequest& req, Shell& shell, const std::string& machine, ReplyCallback done);
  HttpReply on_config_get(const WsmanRequest& req);

  void start_command(const std::shared_ptr<Command>& cmd, Shell& shell);
  void advance(const std::shared_ptr<Command>& cmd);
  void deliver_if_ready(Command& cmd);
  std::string receive_body(Command& cmd, const std::vector<std::string>& streams, long long budget);
  void finish_held(Command& cmd, HttpReply reply);
  void stop_command(Command& cmd, int exit_code);
  void schedule_idle_sweep();
  void sweep_idle_shells();
  void erase_shell(const std::string& id);
  void count_commands();  // commands alive in all shells -> Stats (running now, high-water mark)

  boost::asio::io_context& ioc_;
  WindowsModel& model_;
  Stats& stats_;
  WinrsOptions options_;
  std::map<std::string, Shell> shells_;
  std::map<std::string, int> shells_per_owner_;
  boost::asio::steady_timer idle_timer_;
  bool stopped_ = false;
  PsrpService* powershell_ = nullptr;
};

// "http://host:5985/wsman" -> "host" (Windows names itself in faults as the client addressed it).
std::string machine_from_to(const std::string& to, const std::string& fallback);

// The first step of every WS-Man service of the host: parse the envelope, count its action, and name the machine
// its faults carry (the To address, else the Host header, else `hostname`). A request that does not parse is
// counted and answered with its fault here, and the result is empty.
struct ParsedRequest {
  WsmanRequest request;
  std::string machine;
};
std::optional<ParsedRequest> parse_or_answer(const RequestContext& ctx, const std::string& body,
                                             const std::string& hostname, Stats& stats, const ReplyCallback& done);

}  // namespace wincert::sim
