#!/usr/bin/python3
"""The PSRP message layer against a real PowerShell 7 (`pwsh -s`, OutOfProc framing driven here in Python):
open a runspace pool with our SESSION_CAPABILITY and INIT_RUNSPACEPOOL, run commands with named parameters and
scripts built by our CREATE_PIPELINE, and decode every reply with our defragmenter and typed parsers
(psrp_probe). Checks output rendering, unicode and _x escapes, 1 MB of output (many fragments), a 100 KB
pipeline (several of our fragments), error records, a throwing pipeline, and that Read-Host fails at once
with our null host instead of waiting. Exit 77 (skipped) without pwsh, except under CI=true.

  pwsh_peer_test.py --probe PATH [--pwsh PATH] [--tools-file build/tools/powershell-tools.cmake]
"""
import argparse, os, queue, re, subprocess, sys, threading, time, uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "support"))
import wincert_testsupport as ts  # noqa: E402

NIL = "00000000-0000-0000-0000-000000000000"


class Peer:
    def __init__(self, pwsh, probe):
        self.probe = probe
        env = dict(os.environ, POWERSHELL_TELEMETRY_OPTOUT="1", POWERSHELL_UPDATECHECK="Off", NO_COLOR="1")
        self.ps = subprocess.Popen([pwsh, "-NoLogo", "-NoProfile", "-s"], stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        self.decoder = subprocess.Popen([probe, "decode"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.object_id = 1
        self.messages = {}  # PSGuid -> decoded messages
        self.acks = set()  # (element, PSGuid)

    def _read(self):
        for line in self.ps.stdout:
            self.lines.put(line.rstrip("\r\n"))
        self.lines.put(None)

    def send(self, line):
        self.ps.stdin.write(line + "\n")
        self.ps.stdin.flush()

    def build(self, *args):
        return subprocess.check_output([self.probe, *args], text=True).strip()

    def wait(self, condition, timeout, what):
        """Reads pwsh's lines (Data decoded into self.messages per PSGuid, acks into self.acks) until condition()."""
        end = time.time() + timeout
        while not condition():
            if time.time() > end:
                raise AssertionError(f"no {what} within {timeout}s; got {self.messages}")
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError("pwsh closed its output; stderr: " + self.ps.stderr.read()[:2000])
            ack = re.fullmatch(r"<(\w+Ack) PSGuid='([^']+)' />", line)
            if ack:
                self.acks.add((ack.group(1), ack.group(2)))
                continue
            m = re.fullmatch(r"<Data Stream='Default' PSGuid='([^']+)'>([^<]*)</Data>", line)
            if not m:
                raise AssertionError("unexpected line from pwsh: " + line[:300])
            self.decoder.stdin.write(m.group(2) + "\n")
            self.decoder.stdin.flush()
            decoded = self.decoder.stdout.readline().strip()
            for message in filter(None, decoded.split(" | ")):
                assert not message.startswith("DECODE-ERROR") and " PARSE-ERROR " not in message, message
                self.messages.setdefault(m.group(1), []).append(message)

    def until_message(self, psguid, pattern, timeout):
        def done():
            return any(re.match(pattern, x) for x in self.messages.get(psguid, []))
        self.wait(done, timeout, f"{pattern} for {psguid}")
        return self.messages[psguid]

    def until_ack(self, tag, psguid, timeout=60):
        self.wait(lambda: (tag, psguid) in self.acks, timeout, f"{tag} for {psguid}")

    def open(self):
        pool = str(uuid.uuid4())
        self.send(f"<Data Stream='Default' PSGuid='{NIL}'>{self.build('open', pool, '1')}</Data>")
        self.object_id = 3
        self.pool = pool
        return self.until_message(NIL, "RUNSPACEPOOL_STATE", 120)

    def run(self, kind, text, *params, timeout=60):
        # The server handles each line on its own thread: a pipeline's Data must wait for its CommandAck.
        pid = str(uuid.uuid4())
        self.send(f"<Command PSGuid='{pid}' />")
        self.until_ack("CommandAck", pid)
        payload = self.build("pipeline", self.pool, str(self.object_id), pid, kind, text, *params)
        self.object_id += 1
        started = time.time()
        self.send(f"<Data Stream='Default' PSGuid='{pid}'>{payload}</Data>")
        messages = self.until_message(pid, r"PIPELINE_STATE state=[345]\b", timeout)
        elapsed = time.time() - started
        self.send(f"<Close PSGuid='{pid}' />")
        self.until_ack("CloseAck", pid)
        return messages, elapsed

    def close(self):
        self.send(f"<Close PSGuid='{NIL}' />")
        try:
            return self.until_message(NIL, "RUNSPACEPOOL_STATE state=3", 60)
        finally:
            self.ps.stdin.close()
            self.decoder.stdin.close()
            try:
                self.ps.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.ps.kill()
            self.decoder.wait(timeout=30)


def outputs(messages):
    return [re.search(r"text=\[(.*)\]$", m).group(1) for m in messages if m.startswith("PIPELINE_OUTPUT")]


def check(condition, what, messages):
    if not condition:
        raise AssertionError(f"{what}: {messages}")
    print(f"ok   {what}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--probe", required=True)
    parser.add_argument("--pwsh", default="")
    parser.add_argument("--tools-file", default="")
    args = parser.parse_args()
    pwsh = ts.find_pwsh(args.pwsh, args.tools_file)
    if not pwsh:
        if os.environ.get("CI") == "true":
            print("pwsh not found and CI=true: run scripts/setup.sh", file=sys.stderr)
            return 1
        print("SKIPPED: pwsh (PowerShell 7) not found; run scripts/setup.sh")
        return 77
    print(f"pwsh: {pwsh}")
    peer = Peer(pwsh, args.probe)
    try:
        opened = peer.open()
        check(any(m.startswith("SESSION_CAPABILITY protocol=2.") for m in opened), "server SESSION_CAPABILITY", opened)
        check(opened[-1] == "RUNSPACEPOOL_STATE state=2", "pool opened", opened)

        m, _ = peer.run("cmd", "Get-Date", "Format", "yyyy")
        check(re.fullmatch(r"\d{4}", outputs(m)[0] or "") and m[-1] == "PIPELINE_STATE state=4",
              "a command with a named parameter", m)

        text = "h\u00e9llo \U0001F600 _x000A_ <&> \"q\""
        m, _ = peer.run("script", "Write-Output '" + text + "'; 1; $true; [guid]::Empty; "
                        "Write-Warning w1; Write-Verbose v1 -Verbose; Write-Information i1; Write-Error e1")
        check(outputs(m) == [text, "1", "True", NIL], "outputs rendered as the CLI prints them", m)
        check("WARNING_RECORD text=[w1]" in m and "VERBOSE_RECORD text=[v1]" in m and
              "INFORMATION_RECORD text=[i1]" in m, "warning, verbose and information records", m)
        check(any(x.startswith("ERROR_RECORD message=[e1] fqid=Microsoft.PowerShell.Commands.WriteErrorException")
                  for x in m) and m[-1] == "PIPELINE_STATE state=4", "a non-terminating error record", m)

        m, _ = peer.run("cmd", "Get-Item", "Path", "/nonexistent-psrp-test")
        check(any("fqid=PathNotFound,Microsoft.PowerShell.Commands.GetItemCommand" in x and
                  "target=[/nonexistent-psrp-test]" in x for x in m), "an error record with its target", m)

        m, _ = peer.run("script", "throw 'boom'")
        check(m[-1].startswith("PIPELINE_STATE state=5 message=[boom]"), "a throwing pipeline fails with its error", m)

        m, elapsed = peer.run("cmd", "Read-Host", "Prompt", "name", timeout=30)
        check(m[-1].startswith("PIPELINE_STATE state=5") and "fqid=HostFunctionNotImplemented" in m[-1] and
              elapsed < 30, f"Read-Host fails at once with the null host ({elapsed:.1f}s)", m)

        m, _ = peer.run("script", "'x' * 1048576")
        check(any(x.startswith("PIPELINE_OUTPUT length=1048576 ") for x in m), "1 MB of output reassembled", m)

        m, _ = peer.run("script", "$s = '" + "a" * 100000 + "'; $s.Length")
        check(outputs(m) == ["100000"], "a 100 KB pipeline sent as several fragments", m)

        closed = peer.close()
        check(closed[-1] == "RUNSPACEPOOL_STATE state=3", "pool closed", closed)
    except BaseException:
        if peer.ps.poll() is None:
            peer.ps.kill()
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
