#!/usr/bin/env bash
# The demo: a simulated Windows host (winhost-sim) on loopback, reached over HTTPS + Basic by the agent's
# own WinRM client, running a command and the host-info PowerShell operation.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=true
cmake --preset default >/dev/null
cmake --build --preset default --target wincert-agent winhost-sim -j"$(nproc)"

bin=build/default
work=$(mktemp -d)
sim_pid=""
cleanup() { [ -n "$sim_pid" ] && kill "$sim_pid" 2>/dev/null && wait "$sim_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

# A throwaway CA and a server certificate for localhost, so TLS verification stays on.
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=wincert demo CA" \
  -keyout "$work/ca.key" -out "$work/ca.pem" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout "$work/host.key" -out "$work/host.csr" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' > "$work/ext.cnf"
openssl x509 -req -in "$work/host.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" -CAcreateserial -days 1 \
  -extfile "$work/ext.cnf" -out "$work/host.pem" 2>/dev/null

export DEMO_PASSWORD="demo-$(openssl rand -hex 8)"
printf 'WINHOST01:demo:%s\n' "$DEMO_PASSWORD" > "$work/users"

"$bin/sim/winhost/winhost-sim" --listen 127.0.0.1:0 --port-file "$work/port" --users "$work/users" \
  --tls-cert "$work/host.pem" --tls-key "$work/host.key" --status-file "$work/status.json" &
sim_pid=$!
for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.1; done
port=$(cat "$work/port")
endpoint="https://localhost:$port/wsman"
auth=(--auth basic --user demo --password-env DEMO_PASSWORD --ca-file "$work/ca.pem")

echo "winhost-sim listening on $endpoint"
echo
echo "\$ wincert-agent winrm exec --endpoint $endpoint ... -- echo hello from the simulated host"
"$bin/agent/wincert-agent" winrm exec --endpoint "$endpoint" "${auth[@]}" -- echo hello from the simulated host
echo
echo "\$ wincert-agent winrm ps --endpoint $endpoint ... --script certstore/scripts/host-info.ps1 --repeat 5"
"$bin/agent/wincert-agent" winrm ps --endpoint "$endpoint" "${auth[@]}" --script certstore/scripts/host-info.ps1 --repeat 5
echo
echo "winhost-sim counters: $(cat "$work/status.json")"
