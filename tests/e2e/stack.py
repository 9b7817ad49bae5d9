#!/usr/bin/python3
"""The whole stack on loopback, for end-to-end tests, the demo and the load benchmark.

    command-sim   (plays Keyfactor Command: Orchestrators API, admin API, CA)
    winhost-sim   (plays one or more Windows hosts over real WS-Management; a model file on disk)
    wincert-agent (run --config FILE: the system under test)

Every process listens on port 0 and reports its port through --port-file; everything lives in one
temporary directory that close() removes (unless keep=True). Children get PR_SET_PDEATHSIG(SIGKILL),
so they die with this Python process even when it is killed; close() also stops them explicitly.
Python 3 standard library only (Debian 12's /usr/bin/python3).

Stable API (tests, scripts/demo.py and the load benchmark import it; add, don't change):

    from stack import Binaries, Stack, wait_until, StackError

    with Stack(Binaries(agent, command_sim, winhost_sim), hosts=1, latency_ms=0,
               agent_config={"MaxJobsPerHost": 2}) as st:
        st.start()                                  # command-sim + winhost-sim + agent, agent approved
        wincert = st.create_store("WinCert", store_path="My")        # host 0 of winhost-sim
        job = st.schedule("Inventory", wincert)                      # -> job dict (JobId, ...)
        entry = st.wait_job(job)                                     # -> its history entry
        st.admin.inventory(wincert["Id"])                            # admin API client
        st.winhost.model()                                           # host 0's model file (dict)
        st.winhost.status()                                          # winhost-sim counters
        st.agent.kill(); st.agent.start()                            # kill -9 / restart the agent
        st.command.stop(); st.command.start()                        # same port, same state dir
        st.secrets                                                   # every secret in play (log checks)

Components can also be used alone: CommandSim, WinhostSim, Agent, AdminClient (each documented below).
Timeouts: every wait has a deadline (seconds); DEFAULT_TIMEOUT is generous for a loaded 2-core machine.

Notes for load tests:
  * winhost-sim --hosts N serves N hosts on N ports of 127.0.0.1. The agent's MaxJobsPerHost counts per host
    NAME (ClientMachine without its port: agent/scheduler.cpp host_key), so for the agent those N stores are
    one host: set MaxJobsPerHost >= MaxConcurrentJobs to drive the N simulated hosts in parallel.
  * status() with hosts > 1 has the sums, "hosts" (each host's counters), "max_commands_running_per_host"
    and "max_commands_running_all_hosts" (commands running on all hosts at once, high-water).
  * The agent's heartbeat is 1 s here (it learns about new jobs when Command ends its session), so a job
    scheduled while the agent is idle starts within about a second.
"""
import base64
import json
import os
import re
import secrets as _secrets
import shutil
import signal
import ssl
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

__all__ = ["Binaries", "Stack", "CommandSim", "WinhostSim", "Agent", "AdminClient", "StackError", "ProcessExited",
           "wait_until", "free_port", "refused_port", "DEFAULT_TIMEOUT", "REPO_ROOT", "EXAMPLE_MODEL",
           "STORE_TYPES", "IIS_ENTRY", "SQL_ENTRY"]

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import wincert_testsupport as _ts  # noqa: E402

REPO_ROOT = _ts.REPO_ROOT
EXAMPLE_MODEL = os.path.join(REPO_ROOT, "sim", "winhost", "model", "example-model.json")
DEFAULT_TIMEOUT = _ts.DEFAULT_TIMEOUT
STORE_TYPES = ("WinCert", "IISU", "WinSql")
# Entry parameters for an IIS binding / a SQL Server instance on the example model (WEB01).
IIS_ENTRY = {"SiteName": "Default Web Site", "Port": "443", "IPAddress": "*", "HostName": "", "SniFlag": "0",
             "Protocol": "https"}
SQL_ENTRY = {"InstanceName": "MSSQLSERVER"}


# Processes, port files, waits: the shared Python test support (tests/support/wincert_testsupport.py).
# StackError and ProcessExited are its error types under the names this module has always exported.
StackError = _ts.TestSupportError
ProcessExited = _ts.ProcessExited
wait_until = _ts.wait_until
free_port = _ts.free_port
refused_port = _ts.refused_port
Process = _ts.Process


def _random_secret(prefix):
    return f"{prefix}-{_secrets.token_hex(8)}"


# ---------------------------------------------------------------- admin API

class AdminClient:
    """command-sim's admin API (/admin/..., loopback, JSON). Every method returns the decoded answer and
    raises StackError on a status other than 200/201 (call request() for other expectations)."""

    def __init__(self, base_url, timeout=30.0, ca_file=None):
        self.base = base_url.rstrip("/")  # http(s)://127.0.0.1:PORT
        self.timeout = timeout
        # HTTPS command-sim: trust its CA (the admin client sends no client certificate; none is required).
        self.context = ssl.create_default_context(cafile=ca_file) if ca_file else None

    def request(self, method, path, body=None, expect=(200, 201)):
        """(status, decoded body) when status is in `expect` (None = any); StackError otherwise."""
        data = None if body is None else json.dumps(body).encode("utf-8")
        req = urllib.request.Request(self.base + "/admin" + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout, context=self.context) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as e:
            status, raw = e.code, e.read()
        except (urllib.error.URLError, OSError) as e:
            raise StackError(f"admin {method} {path}: {e}") from e
        try:
            answer = json.loads(raw) if raw else None
        except ValueError:
            answer = raw.decode("utf-8", "replace")
        if expect is not None and status not in expect:
            raise StackError(f"admin {method} {path} -> HTTP {status}: {answer}")
        return status, answer

    def get(self, path):
        return self.request("GET", path)[1]

    def post(self, path, body=None):
        return self.request("POST", path, {} if body is None else body)[1]

    # --- orchestrators and sessions
    def health(self):
        return self.get("/health")

    def agents(self):
        return self.get("/agents")

    def agent(self, name_or_id):
        return self.get("/agents/" + urllib.parse.quote(name_or_id, safe=""))

    def approve(self, name_or_id):
        return self.post(f"/agents/{urllib.parse.quote(name_or_id, safe='')}/approve")

    def invalidate_sessions(self, agent=None):
        """Ends every session (or one orchestrator's); returns how many."""
        return self.post("/sessions/invalidate", {} if agent is None else {"AgentId": agent})["Invalidated"]

    # --- stores and inventory
    def stores(self):
        return self.get("/stores")

    def create_store(self, store_type, client_machine, store_path, agent, properties, inventory_schedule=None):
        body = {"CertStoreType": store_type, "ClientMachine": client_machine, "StorePath": store_path,
                "AgentId": agent, "Properties": properties}
        if inventory_schedule is not None:
            body["InventorySchedule"] = inventory_schedule
        return self.post("/stores", body)

    def inventory(self, store_id):
        """{StoreId, Updated, JobHistoryId, Items: [{Alias, Thumbprints, Certificates, ...}]}"""
        return self.get(f"/stores/{store_id}/inventory")

    # --- jobs and history
    def schedule(self, body):
        """POST /admin/jobs with the body as the README describes (Type, StoreId, ...)."""
        return self.post("/jobs", body)

    def job(self, job_id):
        return self.get(f"/jobs/{job_id}")

    def jobs(self, all_jobs=True):
        return self.get("/jobs?all=1" if all_jobs else "/jobs")

    def cancel(self, job_id):
        return self.post(f"/jobs/{job_id}/cancel")

    def history(self, **filters):
        """Completions recorded, filtered by store=, job=, agent=, result= (as the admin API takes them)."""
        query = urllib.parse.urlencode({k: v for k, v in filters.items() if v is not None})
        return self.get("/history" + ("?" + query if query else ""))

    # --- CA, counters, faults, settings
    def make_pfx(self, subject, password, sans=None, **extra):
        """{Pfx (base64), Thumbprint, Subject, SerialNumber, NotAfter, Certificate (base64 DER)}"""
        body = {"Subject": subject, "Password": password}
        if sans is not None:
            body["SANs"] = sans
        body.update(extra)
        return self.post("/pfx", body)

    def ca(self):
        return self.get("/ca")

    def certificates(self):
        return self.get("/certificates")

    def counters(self):
        return self.get("/counters")

    def reset_counters(self):
        return self.post("/counters/reset")

    def set_faults(self, **knobs):
        """POST /admin/faults, e.g. set_faults(DropForSeconds=10) or set_faults(FailNext={"Count": 3})."""
        return self.post("/faults", knobs)

    def clear_faults(self):
        return self.request("DELETE", "/faults")[1]

    def settings(self):
        return self.get("/settings")

    def put_settings(self, **values):
        return self.request("PUT", "/settings", values)[1]


# ---------------------------------------------------------------- command-sim

class CommandSim:
    """command-sim with Basic authentication for one orchestrator user, state in `workdir`/command-state.

    start() picks a free port the first time and reuses it on later starts (stop()/start() = a Command
    restart on the SAME port with the same state). `url` is the Orchestrators API base for the agent."""

    def __init__(self, binary, workdir, user, password, extra_args=(), log_level="info"):
        self.binary, self.workdir = binary, workdir
        self.user, self.password = user, password
        self.state_dir = os.path.join(workdir, "command-state")
        self.log_path = os.path.join(workdir, "command-sim.log")
        self.users_file = os.path.join(workdir, "command-users")
        with open(self.users_file, "w", encoding="utf-8") as f:
            f.write(f"{user}:{password}\n")
        os.chmod(self.users_file, 0o600)
        self.extra_args = list(extra_args)
        self.tls_ca = None  # with --tls-cert: the PEM CA the admin client trusts (set by the caller)
        self.log_level = log_level
        self.port = None
        self.process = None

    @property
    def origin(self):
        scheme = "https" if "--tls-cert" in self.extra_args else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    @property
    def url(self):
        return self.origin + "/KeyfactorAgents"

    @property
    def admin(self):
        return AdminClient(self.origin, ca_file=self.tls_ca)

    def start(self, timeout=60.0):
        if self.process is None:
            args = ["--state", self.state_dir, "--users", self.users_file, "--log-level", self.log_level]
            self.process = _ts.Server("command-sim", self.binary, args + self.extra_args, self.workdir,
                                      log_path=self.log_path)
        self.process.start(timeout, same_port=True)
        self.port = self.process.port
        wait_until(lambda: self.admin.health().get("Ok"), 30, 0.05, "command-sim's admin health")
        return self

    def stop(self, timeout=30.0):
        """SIGTERM (command-sim saves its state) and wait."""
        return self.process.stop(timeout) if self.process else None

    def kill(self):
        if self.process:
            self.process.kill()

    def running(self):
        return self.process is not None and self.process.running()


# ---------------------------------------------------------------- winhost-sim

class WinhostSim:
    """winhost-sim serving `hosts` Windows hosts (one port each) over HTTP with Basic (--allow-unencrypted).

    Host 0 is the model file (`model_path`, rewritten by the simulator after every change); hosts 1.. are
    in-memory copies named <hostname>-<i>. model: None (sim/winhost/model/example-model.json), a path or a dict."""

    def __init__(self, binary, workdir, user, password, model=None, hosts=1, latency_ms=0, ps_start_ms=0, extra_args=(),
                 log_level="info", name="winhost"):
        self.binary, self.workdir, self.user, self.password = binary, workdir, user, password
        self.hosts, self.latency_ms = hosts, latency_ms
        # --ps-start-ms: the host's PowerShell start cost. 0 for tests and benchmarks (runtimes and recorded
        # figures stay comparable); None keeps winhost-sim's realistic default (the demo).
        self.ps_start_ms = ps_start_ms
        self.model_path = os.path.join(workdir, f"{name}-model.json")
        if model is None:
            model = EXAMPLE_MODEL
        if isinstance(model, dict):
            with open(self.model_path, "w", encoding="utf-8") as f:
                json.dump(model, f, indent=1)
        else:
            shutil.copyfile(model, self.model_path)
        self.users_file = os.path.join(workdir, f"{name}-users")
        with open(self.users_file, "w", encoding="utf-8") as f:
            f.write(f"{user}:{password}\n")
        os.chmod(self.users_file, 0o600)
        self.status_file = os.path.join(workdir, f"{name}-status.json")
        self.log_path = os.path.join(workdir, f"{name}-sim.log")
        self.extra_args = list(extra_args)
        self.tls_ca = None  # with --tls-cert: the PEM CA the admin client trusts (set by the caller)
        self.log_level = log_level
        self.name = name
        self.ports = []
        self.process = None

    def start(self, timeout=60.0):
        if os.path.exists(self.status_file):
            os.unlink(self.status_file)
        args = ["--status-file", self.status_file, "--users", self.users_file, "--allow-unencrypted", "--model",
                self.model_path, "--log-level", self.log_level]
        if self.hosts != 1:
            args += ["--hosts", str(self.hosts)]
        if self.latency_ms:
            args += ["--latency-ms", str(self.latency_ms)]
        if self.ps_start_ms is not None:
            args += ["--ps-start-ms", str(self.ps_start_ms)]
        self.process = _ts.Server(f"winhost-sim ({self.name})", self.binary, args + self.extra_args, self.workdir,
                                  hosts=self.hosts, log_path=self.log_path).start(timeout)
        self.ports = self.process.ports
        return self

    def stop(self, timeout=30.0):
        return self.process.stop(timeout) if self.process else None

    def client_machine(self, host=0):
        """The ClientMachine a store on host `host` needs: 127.0.0.1:PORT (the port wins over WinRM Port)."""
        return f"127.0.0.1:{self.ports[host]}"

    def status(self):
        """The counters (connections, commands, max_commands_running, ...; with hosts > 1 also
        max_commands_running_per_host and a "hosts" list)."""
        with open(self.status_file, encoding="utf-8") as f:
            return json.load(f)

    def model(self):
        """Host 0's model as the simulator last saved it."""
        with open(self.model_path, encoding="utf-8") as f:
            return json.load(f)

    # --- questions about host 0's model (names case-insensitive, thumbprints upper case)
    def store_thumbprints(self, store="My"):
        stores = {k.lower(): v for k, v in self.model().get("stores", {}).items()}
        return [_der_thumbprint(c["der"]) for c in stores.get(store.lower(), [])]

    def iis_bindings(self, site="Default Web Site"):
        for s in self.model().get("iis", {}).get("sites", []):
            if s.get("name", "").lower() == site.lower():
                return s.get("bindings", [])
        return []

    def sql_instance(self, name="MSSQLSERVER"):
        for i in self.model().get("sql", {}).get("instances", []):
            if i.get("name", "").lower() == name.lower():
                return i
        return None


def _der_thumbprint(der_b64):
    import hashlib
    return hashlib.sha1(base64.b64decode(der_b64)).hexdigest().upper()


# ---------------------------------------------------------------- the agent

class Agent:
    """wincert-agent run --config FILE, with a generated configuration in `workdir`/agent.json: Basic to
    command-sim (password in a 0600 SecretsFile), outbox in `workdir`/agent-state, debug log in
    `workdir`/agent.log (appended across restarts). `config` overrides/extends the generated keys;
    `secrets` adds members to the SecretsFile (e.g. {"ClientSecret": ...} for OAuth)."""

    def __init__(self, binary, workdir, command_url, user, password, name="e2e-orchestrator", config=None,
                 secrets=None):
        self.binary, self.workdir, self.name = binary, workdir, name
        self.state_dir = os.path.join(workdir, "agent-state")
        self.log_path = os.path.join(workdir, "agent.log")
        self.output_path = os.path.join(workdir, "agent.out")  # stdout/stderr (empty unless something is wrong)
        self.config_path = os.path.join(workdir, "agent.json")
        self.secrets_path = os.path.join(workdir, "agent-secrets.json")
        with open(self.secrets_path, "w", encoding="utf-8") as f:
            json.dump(dict({"Password": password}, **(secrets or {})), f)
        os.chmod(self.secrets_path, 0o600)
        self.config = {
            "AgentsServerUri": command_url,
            "OrchestratorName": name,
            "Username": user,
            "SecretsFile": self.secrets_path,
            "OutboxDirectory": self.state_dir,
            "LogLevel": "debug",
            "LogFile": self.log_path,
            "HeartbeatIntervalSeconds": 1,   # learn about new jobs (session invalidated) within a second
            "JobPollIntervalSeconds": 0,
            "RetryInitialSeconds": 1,
            "RetryMaxSeconds": 8,
            "ShutdownGraceSeconds": 10,
            "OutboxFlushSeconds": 5,
            "ServerConnectTimeoutSeconds": 5,
            "ServerTimeoutSeconds": 30,
            "MaxConcurrentJobs": 32,
            "MaxJobsPerHost": 2,
            "WinRM": {"DefaultAuth": "basic", "ConnectTimeoutSeconds": 10, "OperationTimeoutSeconds": 20,
                      "CommandTimeoutSeconds": 300, "IdleTimeoutSeconds": 120},
        }
        for key, value in (config or {}).items():
            if key == "WinRM" and isinstance(value, dict):
                self.config["WinRM"].update(value)
            else:
                self.config[key] = value
        self.process = None
        self.starts = 0
        self.extra_env = {}  # added to the agent's environment at the next start (test hooks)

    def write_config(self):
        with open(self.config_path, "w", encoding="utf-8") as f:
            json.dump(self.config, f, indent=1)

    def start(self):
        self.write_config()
        env = {k: v for k, v in os.environ.items() if not k.startswith("WINCERT_")}
        env.update(self.extra_env)
        self.process = Process("wincert-agent", [self.binary, "run", "--config", self.config_path],
                               self.output_path, env=env).start()
        self.starts += 1
        return self

    def kill(self, sig=signal.SIGKILL):
        """kill -9 (or another signal) without waiting for a graceful stop."""
        if self.process:
            self.process.kill(sig)

    def stop(self, timeout=60.0):
        """SIGTERM: graceful stop (running jobs get ShutdownGraceSeconds, the outbox OutboxFlushSeconds)."""
        return self.process.stop(timeout) if self.process else None

    def restart(self):
        self.stop()
        return self.start()

    def running(self):
        return self.process is not None and self.process.running()

    def log(self):
        """The whole debug log (all starts)."""
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def output(self):
        return self.process.output() if self.process else ""

    def wait_log(self, pattern, timeout=DEFAULT_TIMEOUT, count=1):
        """Waits until the log matches regex `pattern` at least `count` times; returns the matches."""
        rx = re.compile(pattern)

        def found():
            if self.process and not self.process.running():
                raise ProcessExited(f"the agent exited with {self.process.returncode()}: {self.output()[-2000:]}")
            matches = rx.findall(self.log())
            return matches if len(matches) >= count else None
        return wait_until(found, timeout, 0.1, f"agent log /{pattern}/ x{count}")

    def outbox_files(self):
        d = os.path.join(self.state_dir, "outbox")
        return sorted(os.listdir(d)) if os.path.isdir(d) else []


# ---------------------------------------------------------------- the stack

class Binaries:
    """Paths of the three executables. from_args(argv) takes them from argv[1:4] or the environment
    (WINCERT_AGENT, COMMAND_SIM, WINHOST_SIM), defaulting to build/default."""

    def __init__(self, agent, command_sim, winhost_sim):
        self.agent, self.command_sim, self.winhost_sim = agent, command_sim, winhost_sim
        for path in (agent, command_sim, winhost_sim):
            if not os.access(path, os.X_OK):
                raise StackError(f"not an executable: {path}")

    @classmethod
    def from_args(cls, args=None):
        args = list(args or [])
        build = os.path.join(REPO_ROOT, "build", "default")
        defaults = [os.environ.get("WINCERT_AGENT", os.path.join(build, "agent", "wincert-agent")),
                    os.environ.get("COMMAND_SIM", os.path.join(build, "sim", "command", "command-sim")),
                    os.environ.get("WINHOST_SIM", os.path.join(build, "sim", "winhost", "winhost-sim"))]
        paths = args[:3] + defaults[len(args[:3]):]
        return cls(*paths)


class Stack:
    """command-sim + winhost-sim + agent in one temporary directory; a context manager that always
    stops the processes and removes the directory (keep=True keeps it and prints where).

    hosts, latency_ms, model, ps_start_ms: winhost-sim's --hosts, --latency-ms, model and --ps-start-ms (see
    WinhostSim; ps_start_ms None = the simulator's default).
    agent_config: agent configuration overrides; agent_secrets: extra SecretsFile members (both are public
    attributes that may still be changed before start()).
    command_args / winhost_args: extra command line options.
    Secrets (Command password, WinRM password, and every PFX password and PFX made through make_pfx())
    are random per stack and listed in `secrets`."""

    def __init__(self, binaries, hosts=1, latency_ms=0, model=None, agent_config=None, command_args=(), ps_start_ms=0,
                 winhost_args=(), keep=False, workdir=None, agent_name="e2e-orchestrator", agent_secrets=None):
        self.bins = binaries
        self.keep = keep
        self.workdir = workdir or tempfile.mkdtemp(prefix="wincert-e2e-")
        os.makedirs(self.workdir, exist_ok=True)
        self.command_user = "KEYFACTOR\\svc-orchestrator"
        self.command_password = _random_secret("cmd-Pw")
        self.winrm_user = "wincert-admin"
        self.winrm_password = _random_secret("winrm-Pw")
        self.secrets = [self.command_password, self.winrm_password]
        self.command = CommandSim(binaries.command_sim, self.workdir, self.command_user, self.command_password,
                                  extra_args=command_args)
        self.winhost = WinhostSim(binaries.winhost_sim, self.workdir, self.winrm_user, self.winrm_password,
                                  model=model, hosts=hosts, latency_ms=latency_ms, ps_start_ms=ps_start_ms,
                                  extra_args=winhost_args)
        self.agent_config = agent_config or {}
        self.agent_secrets = agent_secrets or {}
        self.agent_name = agent_name
        self.agent = None
        self.agent_id = None

    # --- lifecycle
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    @property
    def admin(self):
        return self.command.admin

    def start(self, approve=True, timeout=DEFAULT_TIMEOUT, command_url=None):
        """Starts command-sim and winhost-sim (unless already running), then the agent; with approve,
        waits for its first registration, approves it and waits until it holds an approved session.
        command_url: what the agent uses as AgentsServerUri (default command-sim's; e.g. a proxy)."""
        if not self.command.running():
            self.command.start()
        if not (self.winhost.process and self.winhost.process.running()):
            self.winhost.start()
        self.agent = Agent(self.bins.agent, self.workdir, command_url or self.command.url, self.command_user,
                           self.command_password, name=self.agent_name, config=self.agent_config,
                           secrets=self.agent_secrets)
        self.agent.start()
        if approve:
            self.approve_agent(timeout)
        return self

    def approve_agent(self, timeout=DEFAULT_TIMEOUT):
        """Waits for the orchestrator to register (New), approves it, waits for an approved registration."""
        def registered():
            for a in self.admin.agents():
                if a["ClientMachine"].lower() == self.agent_name.lower():
                    return a
            return None
        agent = wait_until(registered, timeout, 0.1, f"orchestrator '{self.agent_name}' to register")
        self.agent_id = agent["AgentId"]
        self.admin.approve(self.agent_id)  # ends its sessions: any session from now on is an approved one

        def approved_session():
            if not self.agent.running():
                raise ProcessExited(f"the agent exited with {self.agent.process.returncode()}: "
                                 f"{self.agent.output()[-2000:]}")
            a = self.admin.agent(self.agent_id)
            return a if a.get("Status") == 2 and a.get("Sessions", 0) >= 1 else None
        return wait_until(approved_session, timeout, 0.1,
                          f"orchestrator '{self.agent_name}' to hold an approved session")

    def close(self):
        for part in (self.agent, self.command, self.winhost):
            try:
                if part is not None:
                    part.stop(timeout=20)
            except Exception as e:  # noqa: BLE001  (cleanup goes on)
                print(f"stack: stopping {part}: {e}", file=sys.stderr)
        if self.keep:
            print(f"stack: kept {self.workdir}", file=sys.stderr)
        else:
            shutil.rmtree(self.workdir, ignore_errors=True)

    # --- stores and jobs
    def store_properties(self, **overrides):
        """What the agent needs to reach winhost-sim: Basic over http with AllowUnencrypted."""
        props = {"WinRM Protocol": "http", "WinRM Authentication": "basic", "WinRM AllowUnencrypted": "true",
                 "ServerUseSsl": "false", "ServerUsername": self.winrm_user, "ServerPassword": self.winrm_password}
        props.update(overrides)
        return props

    def create_store(self, store_type, store_path=None, host=0, client_machine=None, properties=None,
                     inventory_schedule=None):
        """A WinCert/IISU/WinSql store on winhost-sim host `host` (or at `client_machine`), for this agent.
        store_path defaults to My. Returns the store (Id, ...)."""
        machine = client_machine or self.winhost.client_machine(host)
        props = self.store_properties(**(properties or {}))
        return self.admin.create_store(store_type, machine, store_path or "My", self.agent_id or self.agent_name,
                                       props, inventory_schedule)

    def make_pfx(self, subject, sans=None, password=None, **extra):
        """A PFX from command-sim's CA; its password and base64 join `secrets`. Returns the admin answer
        plus "Password"."""
        password = password or _random_secret("pfx-Pw")
        pfx = self.admin.make_pfx(subject, password, sans, **extra)
        pfx["Password"] = password
        self.secrets += [password, pfx["Pfx"]]
        return pfx

    def schedule(self, kind, store, **fields):
        """Schedules a job (kind: Inventory, Add, Remove, Reenrollment) on `store` (dict or id); `fields`
        are the admin API's (Contents, PfxPassword, Alias, Overwrite, EntryParameters, Subject, SANs, ...).
        Immediate unless Schedule is given. Returns the job (JobId, ...)."""
        body = {"Type": kind, "StoreId": store["Id"] if isinstance(store, dict) else store}
        body.update(fields)
        return self.admin.schedule(body)

    def add_pfx(self, store, pfx, entry=None, overwrite=True, alias=""):
        """Schedules an Add of a PFX made by make_pfx()."""
        fields = {"Contents": pfx["Pfx"], "PfxPassword": pfx["Password"], "Alias": alias, "Overwrite": overwrite}
        if entry is not None:
            fields["EntryParameters"] = entry
        return self.schedule("Add", store, **fields)

    def wait_jobs(self, jobs, timeout=DEFAULT_TIMEOUT):
        """Waits until every job (dicts or ids) has at least one history entry; returns {JobId: [entries]}."""
        ids = [j["JobId"] if isinstance(j, dict) else j for j in jobs]

        def done():
            by_job = {}
            for h in self.admin.history():
                by_job.setdefault(h["JobId"], []).append(h)
            missing = [i for i in ids if i not in by_job]
            return None if missing else {i: by_job[i] for i in ids}
        return wait_until(done, timeout, 0.2, f"{len(ids)} job(s) in command-sim's history")

    def wait_job(self, job, timeout=DEFAULT_TIMEOUT):
        """Waits for one job's completion; returns its (first) history entry."""
        job_id = job["JobId"] if isinstance(job, dict) else job
        return self.wait_jobs([job_id], timeout)[job_id][0]

    def history_by_job(self):
        by_job = {}
        for h in self.admin.history():
            by_job.setdefault(h["JobId"], []).append(h)
        return by_job
