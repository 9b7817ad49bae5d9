#!/usr/bin/env bash
# Installs every Debian package the project needs. Idempotent: packages already present are skipped,
# and apt is only touched when something is missing. Called first by the demo, the test command and CI.
set -euo pipefail

packages=(
  # toolchain
  build-essential cmake ninja-build ccache pkg-config clang libclang-rt-14-dev clang-format
  # libraries
  libboost1.81-dev libssl-dev libpugixml-dev nlohmann-json3-dev libspdlog-dev libfmt-dev libcli11-dev
  libgtest-dev libgmock-dev libbenchmark-dev libkrb5-dev libyaml-cpp-dev gss-ntlmssp-dev
  # real peers used by the tests
  krb5-kdc krb5-admin-server krb5-user gss-ntlmssp python3-winrm python3-requests-ntlm python3-requests-kerberos
  python3-gssapi python3-yaml python3-cryptography-vectors openssl python3-prometheus-client
  # benchmarks and reports
  python3-matplotlib
  # Windows build, run under Wine
  g++-mingw-w64-x86-64-posix wine64 dpkg-dev
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

# node and npm come with the machine image (a newer Node than Debian's); Debian's npm conflicts with it.
if ! command -v npm >/dev/null 2>&1; then missing+=(nodejs npm); fi

if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo_cmd apt-get update -qq
  $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
