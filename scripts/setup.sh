#!/usr/bin/env bash
# Installs every Debian package the project needs. Idempotent: packages already present are skipped,
# and apt is only touched when something is missing. Called first by the demo, the test command and CI.
set -euo pipefail

packages=(
  # toolchain
  build-essential cmake ninja-build ccache pkg-config clang libclang-rt-14-dev clang-format
  # libraries
  libboost1.81-dev libssl-dev libpugixml-dev nlohmann-json3-dev libspdlog-dev libfmt-dev libcli11-dev
  libgtest-dev libgmock-dev libbenchmark-dev libkrb5-dev libyaml-cpp-dev gss-ntlmssp-dev libsqlite3-dev libssh-dev
  # real peers used by the tests
  krb5-kdc krb5-admin-server krb5-user gss-ntlmssp python3-winrm python3-requests-ntlm python3-requests-kerberos
  python3-gssapi python3-yaml python3-cryptography-vectors openssl python3-prometheus-client
  openssh-server  # sshd for the PowerShell-over-SSH tests (started by the tests on a loopback port; never the system one)
  # benchmarks and reports
  python3-matplotlib
  # packages: lintian checks the .deb, systemd-analyze/-sysusers/-tmpfiles check and install it in a throwaway root
  lintian systemd
  # Windows build, run under Wine
  g++-mingw-w64-x86-64-posix wine64 dpkg-dev
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo_cmd apt-get update -qq
  $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- PowerShell 7.6 and Pester, project-local (build/tools/; build/ is git-ignored) ---------------------
# The host-side PowerShell module is tested by a real PowerShell engine with Pester (ctest label
# "powershell"). Both come from NuGet through the .NET SDK, pinned: "dotnet tool install PowerShell"
# without a version picks 7.7.0, which fails to install. Quick when already present (version checked by
# the install folder, no network). Without dotnet the PowerShell tests report themselves SKIPPED (FAILED
# under CI=true); the rest of the project does not need dotnet.
pwsh_version=7.6.10
pester_version=5.7.1
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tools="$root/build/tools"
pwsh_dir="$tools/pwsh"
pester_dir="$tools/pester"
pester_psd1="$pester_dir/pester/$pester_version/tools/Pester.psd1"

install_powershell_tools() {
  if ! command -v dotnet >/dev/null 2>&1; then
    cat >&2 <<MSG
setup: 'dotnet' (the .NET SDK) is not installed, so PowerShell $pwsh_version and Pester $pester_version are not.
setup:   The PowerShell tests (ctest -L powershell) will report SKIPPED (and FAIL under CI=true).
setup:   To run them: install the .NET 10 SDK (https://learn.microsoft.com/dotnet/core/install/linux,
setup:   e.g. the dotnet-sdk-10.0 package from packages.microsoft.com), then run scripts/setup.sh again.
MSG
    return 0
  fi
  export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
  mkdir -p "$tools"

  if [ -x "$pwsh_dir/pwsh" ] && [ -d "$pwsh_dir/.store/powershell/$pwsh_version" ]; then
    :  # already installed at the pinned version
  else
    echo "setup: installing PowerShell $pwsh_version into $pwsh_dir (dotnet tool)" >&2
    # Another version (or a broken install) is replaced: the tool folder is ours alone.
    rm -rf "$pwsh_dir"
    if ! dotnet tool install PowerShell --version "$pwsh_version" --tool-path "$pwsh_dir" >"$tools/pwsh-install.log" 2>&1; then
      echo "setup: WARNING: 'dotnet tool install PowerShell --version $pwsh_version' failed (NuGet unreachable?);" \
           "see $tools/pwsh-install.log. The PowerShell tests will be skipped." >&2
    fi
  fi

  if [ ! -f "$pester_psd1" ]; then
    echo "setup: installing Pester $pester_version into $pester_dir (NuGet)" >&2
    # A throwaway project whose only job is to download the package (PackageDownload: no reference, no build).
    local restore="$tools/pester-restore"
    mkdir -p "$restore"
    cat >"$restore/pester-restore.csproj" <<PROJ
<Project Sdk="Microsoft.NET.Sdk">
  <PropertyGroup><TargetFramework>net10.0</TargetFramework></PropertyGroup>
  <ItemGroup><PackageDownload Include="Pester" Version="[$pester_version]" /></ItemGroup>
</Project>
PROJ
    if ! dotnet restore "$restore/pester-restore.csproj" --packages "$pester_dir" >"$tools/pester-install.log" 2>&1 \
       || [ ! -f "$pester_psd1" ]; then
      echo "setup: WARNING: restoring Pester $pester_version from NuGet failed; see $tools/pester-install.log." \
           "The PowerShell tests will be skipped." >&2
    fi
  fi

  # Where the tools are, for the ctest driver (tests/powershell/run.cmake reads this file at test time).
  if [ -x "$pwsh_dir/pwsh" ] && [ -f "$pester_psd1" ]; then
    cat >"$tools/powershell-tools.cmake" <<PATHS
# Written by scripts/setup.sh: the project-local PowerShell and Pester the ctest label "powershell" uses.
set(WINCERT_PWSH_FOUND "$pwsh_dir/pwsh")
set(WINCERT_PWSH_VERSION "$pwsh_version")
set(WINCERT_PESTER_FOUND "$pester_psd1")
set(WINCERT_PESTER_VERSION "$pester_version")
PATHS
  fi
}
install_powershell_tools
