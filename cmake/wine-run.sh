#!/usr/bin/env bash
# Runs a Windows program under Wine in a project-local prefix: the CMAKE_CROSSCOMPILING_EMULATOR of the
# Windows build (ctest, gtest discovery) and the deps script's prefix warm-up.
#   cmake/wine-run.sh PREFIX PROGRAM.exe [ARGS...]
# The first call creates the prefix (wineboot, up to a minute) under a lock, so parallel tests wait for
# one initialisation instead of racing. Mono and Gecko are not installed (nothing here needs them), and
# no display is used. A wineserver started here lingers WINCERT_WINESERVER_PERSIST seconds (default 30)
# after the last Windows program exits, then ends by itself.
set -euo pipefail

if [ $# -lt 2 ]; then
  echo "usage: $0 PREFIX PROGRAM.exe [ARGS...]" >&2
  exit 2
fi
prefix=$1
shift

wine=${WINCERT_WINE:-/usr/lib/wine/wine64}
wineserver=${WINCERT_WINESERVER:-/usr/lib/wine/wineserver}
if [ ! -x "$wine" ]; then
  echo "wine-run: $wine not found; install wine64 (scripts/setup.sh)" >&2
  exit 127
fi

export WINEPREFIX="$prefix"
export WINEARCH=win64
export WINEDEBUG=${WINEDEBUG:--all}
export WINEDLLOVERRIDES=${WINEDLLOVERRIDES:-mscoree,mshtml=}
export WINESERVER="$wineserver"
unset DISPLAY WAYLAND_DISPLAY

ready="$prefix/.wincert-ready"
if [ ! -f "$ready" ]; then
  mkdir -p "$(dirname "$prefix")"
  exec 9>"$prefix.lock"
  flock 9
  if [ ! -f "$ready" ]; then
    echo "wine-run: creating the Wine prefix $prefix (first use only)" >&2
    "$wine" wineboot --init </dev/null >/dev/null 2>&1 9>&- || true
    "$wineserver" -w 9>&-
    if [ ! -f "$prefix/system.reg" ]; then
      echo "wine-run: wineboot did not create $prefix" >&2
      exit 1
    fi
    touch "$ready"
  fi
  exec 9>&-
fi

# A wineserver that outlives each test by a few seconds, started with its output (and that of Wine's
# helper processes: services.exe, explorer.exe, ...) on /dev/null. Otherwise they inherit ctest's output
# pipe, and ctest waits for them to exit after every test (about 3 s each).
exec 9>"$prefix.lock"
flock 9
# (9>&-: the lock must not be inherited by the long-lived processes, or it would be held as long as they run.)
if "$wineserver" -p"${WINCERT_WINESERVER_PERSIST:-30}" </dev/null >/dev/null 2>&1 9>&-; then
  "$wine" cmd.exe /c exit 0 </dev/null >/dev/null 2>&1 9>&- || true
fi
exec 9>&-

exec "$wine" "$@"
