// The PowerShell remoting resource of the simulated host (http://schemas.microsoft.com/powershell/<name>):
// PSRP over WS-Man. A Create opens a runspace pool (creationXml), Command/Send create pipelines, Receive
// returns the server's fragments (re-fragmented to the client's MaxEnvelopeSize), Signal stops or discards a
// pipeline, Delete closes the pool. Pipelines call the WincertOps functions (Invoke-Wincert*) against the
// WindowsModel, as the WinRS path's scripts do. Models per runspace whether the module was loaded, the JEA
// endpoint (NoLanguage: no script text, only the module's functions) and the PowerShell start cost
// (--ps-start-ms per runspace, on timers). Single-threaded: everything runs on one io_context thread.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sim/winhost/handler.hpp"
#include "sim/winhost/programs.hpp"
#include "sim/winhost/stats.hpp"
#include "winrm/psrp/fragment.hpp"
#include "winrm/psrp/message.hpp"
#include "winrm/psrp/messages.hpp"

namespace wincert::sim {

class WindowsModel;

inline constexpr std::string_view kPowerShellResourcePrefix = "http://schemas.microsoft.com/powershell/";

struct PsrpOptions {
  int max_shells_per_user = 30;                 // shared with WinRS when the owner map is shared
  long long max_timeout_ms = 60000;             // MaxTimeoutms
  long long default_idle_timeout_ms = 7200000;  // IdleTimeout
  long long ps_start_ms = 250;                  // the cost of starting one runspace (a PowerShell host)
  std::size_t max_message_bytes = 16 * 1024 * 1024;
  std::size_t max_finished_pipelines = 64;  // kept for a late Receive/Signal, oldest dropped first
};

// The endpoints this host has: full language, and the JEA role of config/jea (NoLanguage).
enum class EndpointKind { kFullLanguage, kJea };
std::optional<EndpointKind> endpoint_for(std::string_view configuration_name);

// "Invoke-WincertStoreInventory" -> "store-inventory" (the reverse of the agent's op_function_name); nullopt
// for a name that is not one of the module's operation functions.
std::optional<std::string> op_for_function(std::string_view function);
// The module's operation functions (config/jea/WincertAgent.psrc VisibleFunctions).
const std::vector<std::string>& wincert_functions();

class PsrpService final : public WsmanHandler {
 public:
  // shells_per_owner: the quota map of the WinRS service, so MaxShellsPerUser counts both (null: own map).
  PsrpService(boost::asio::io_context& ioc, WindowsModel& model, Stats& stats, PsrpOptions options,
              std::map<std::string, int>* shells_per_owner = nullptr);
  ~PsrpService() override;

  void handle(const RequestContext& ctx, std::string body, ReplyCallback done) override;
  // A request already parsed by the WinRS service's router.
  void handle_parsed(const RequestContext& ctx, WsmanRequest& req, const std::string& machine, ReplyCallback done);
  void shutdown() override;

  std::size_t pool_count() const { return pools_.size(); }

 private:
  struct OutMessage {
    std::uint64_t object_id = 0;
    std::string bytes;  // the encoded message
    std::size_t offset = 0;
    std::uint64_t next_fragment = 0;
  };
  struct HeldReceive {
    ReplyCallback done;
    std::string relates_to;
    std::string machine;
    long long budget = 0;
    std::unique_ptr<boost::asio::steady_timer> timer;
  };
  struct Runspace {
    bool busy = false;
    std::optional<std::string> module_version;  // set by the load script
  };
  enum class PipelineState { kReceiving, kWaiting, kRunning, kDone };
  struct Pipeline {
    std::string id;  // CommandId, upper case
    winrm::psrp::Guid pid;
    winrm::psrp::Defragmenter input;
    PipelineState state = PipelineState::kReceiving;
    std::vector<winrm::psrp::PipelineCommand> commands;
    int runspace = -1;
    std::deque<OutMessage> out;
    std::vector<OutputStep> steps;  // script text run by the interpreter, played on timers
    std::size_t next_step = 0;
    bool done_delivered = false;
    std::unique_ptr<boost::asio::steady_timer> timer;
    std::unique_ptr<HeldReceive> held;
  };
  struct Pool {
    std::string id;
    winrm::psrp::Guid rpid;
    std::string owner;
    std::string client_ip;
    std::string resource_uri;
    EndpointKind endpoint = EndpointKind::kFullLanguage;
    int min_runspaces = 1;
    int max_runspaces = 1;
    std::vector<Runspace> runspaces;
    int starting = 0;  // runspaces being started for waiting pipelines
    bool opened = false;
    winrm::psrp::Defragmenter input;
    std::uint64_t next_object_id = 0;
    std::deque<OutMessage> out;
    std::unique_ptr<HeldReceive> held;
    std::map<std::string, std::shared_ptr<Pipeline>> pipelines;
    std::deque<std::string> finished;  // ids of finished pipelines, oldest first
    std::deque<std::string> waiting;   // pipelines waiting for a runspace
    long long idle_timeout_ms = 0;
    std::chrono::steady_clock::time_point last_activity;
    std::unique_ptr<boost::asio::steady_timer> open_timer;
    std::vector<std::unique_ptr<boost::asio::steady_timer>> start_timers;  // runspaces being started
    ProcessContext process;                                                // for script text run by the interpreter
  };

  HttpReply on_create(const WsmanRequest& req, const RequestContext& ctx, const std::string& machine);
  HttpReply on_command(const WsmanRequest& req, Pool& pool, const std::string& machine);
  HttpReply on_send(const WsmanRequest& req, Pool& pool, const std::string& machine);
  HttpReply on_signal(const WsmanRequest& req, Pool& pool, const std::string& machine);
  void on_receive(const WsmanRequest& req, Pool& pool, const std::string& machine, ReplyCallback done);

  Status feed_pipeline(Pool& pool, const std::shared_ptr<Pipeline>& pipeline, std::string_view bytes);
  Status feed_pool(Pool& pool, std::string_view bytes);
  void queue(Pool& pool, std::deque<OutMessage>& out, const winrm::psrp::Message& message);
  void submit(Pool& pool, const std::shared_ptr<Pipeline>& pipeline);
  void dispatch(Pool& pool);
  void start_runspace_then_dispatch(Pool& pool);
  void run(Pool& pool, const std::shared_ptr<Pipeline>& pipeline);
  void play_steps(const std::string& pool_id, const std::shared_ptr<Pipeline>& pipeline);
  void finish(Pool& pool, Pipeline& pipeline, std::int32_t state,
              const std::optional<winrm::psrp::PsValue>& error = std::nullopt);
  void deliver_pool(Pool& pool);
  void deliver_pipeline(Pool& pool, Pipeline& pipeline);
  std::string take_streams(std::deque<OutMessage>& out, long long budget, const std::string& command_id);
  void erase_pool(const std::string& id);
  // The host-wide figures: pools are shells, pipelines not yet finished and delivered are running commands.
  void count_open();
  void schedule_idle_sweep();

  boost::asio::io_context& ioc_;
  WindowsModel& model_;
  Stats& stats_;
  PsrpOptions options_;
  std::map<std::string, Pool> pools_;
  std::map<std::string, int> own_shells_per_owner_;
  std::map<std::string, int>& shells_per_owner_;
  boost::asio::steady_timer idle_timer_;
  bool stopped_ = false;
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);  // posted handlers check it: the service may be gone
};

}  // namespace wincert::sim
