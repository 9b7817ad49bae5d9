#!/usr/bin/env bash
# The demo: wincert-agent against command-sim (plays Keyfactor Command) and winhost-sim (plays a Windows server
# with IIS and SQL Server), all on loopback. The agent registers and is approved, inventories a WinCert, an IISU
# and a WinSql store, adds a certificate with an IIS binding, renews it with a key made on the host, removes the
# replaced certificate, and the demo prints Command's job history. Exit status 0 iff every job succeeded.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=true
cmake --preset default >/dev/null
cmake --build --preset default --target wincert-agent command-sim winhost-sim -j"$(nproc)"

bin=build/default
exec /usr/bin/python3 scripts/demo.py "$bin/agent/wincert-agent" "$bin/sim/command/command-sim" \
  "$bin/sim/winhost/winhost-sim"
