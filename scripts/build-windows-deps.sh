#!/usr/bin/env bash
# Builds the third-party libraries of the Windows (mingw-w64) build once and caches them in the build
# tree; later runs skip every part whose installed marker exists, so CI pays the cost once.
#   - OpenSSL: Debian's own source package (the same upstream version and Debian patches as the Linux
#     build where the archive still has it), fetched with apt into a project-local apt state, built with
#     `Configure mingw64 no-shared no-module` (the legacy provider compiled in, for RC2/3DES PFX files).
#   - googletest: Debian's /usr/src/googletest, built with the project's toolchain file.
#   - pugixml: Debian's source package, built as a static library with the project's toolchain file.
#   - header-only libraries (Boost.Asio/Beast, nlohmann/json, CLI11, spdlog, fmt): a directory holding
#     symlinks to just those in /usr/include, so the mingw include path never sees the rest of /usr/include.
#   - the Wine prefix the tests run in (cmake/wine-run.sh; the first wineboot takes up to a minute).
# The machine's apt configuration is left alone: the deb-src list, lists and cache live under the deps dir.
#
# Usage: scripts/build-windows-deps.sh [--deps-dir DIR] [--force]   (JOBS=n for make/ninja, default 2)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

deps_dir="$root/build/windows-deps"
force=0
while [ $# -gt 0 ]; do
  case "$1" in
    --deps-dir) deps_dir=$2; shift 2 ;;
    --force) force=1; shift ;;
    *) echo "usage: $0 [--deps-dir DIR] [--force]" >&2; exit 2 ;;
  esac
done
mkdir -p "$deps_dir"
deps_dir=$(cd "$deps_dir" && pwd)
jobs=${JOBS:-2}
toolchain="$root/cmake/toolchains/mingw-w64-x86_64.cmake"
triple=x86_64-w64-mingw32

log() { printf 'windows-deps: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

for tool in ${triple}-gcc-posix ${triple}-g++-posix apt-get dpkg-source make perl cmake ninja; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is missing (run scripts/setup.sh)"
done

# ---------------------------------------------------------------------------------------------------
# Header-only libraries: rebuilt every run (cheap), so a change of the Debian packages is picked up.
headers="$deps_dir/include-host"
rm -rf "$headers"
mkdir -p "$headers"
for dir in boost nlohmann CLI spdlog fmt; do
  [ -d "/usr/include/$dir" ] || die "/usr/include/$dir is missing (run scripts/setup.sh)"
  ln -s "/usr/include/$dir" "$headers/$dir"
done

# ---------------------------------------------------------------------------------------------------
# A project-local apt that knows the deb-src twins of the machine's Debian archive entries.
apt_dir="$deps_dir/apt"

# Prints "deb-src [signed-by=...] URI SUITE COMPONENTS" for every Debian "deb" entry in the machine's
# sources, one-line (sources.list, *.list) and deb822 (*.sources, Debian 12's default) alike.
debian_source_entries() {
  local files=()
  [ -f /etc/apt/sources.list ] && files+=(/etc/apt/sources.list)
  for f in /etc/apt/sources.list.d/*.list; do [ -f "$f" ] && files+=("$f"); done
  if [ ${#files[@]} -gt 0 ]; then
    # deb [options] uri suite components...
    awk '$1 == "deb" {
           opts = ""; i = 2
           if ($2 ~ /^\[/) { while ($i !~ /\]$/) { opts = opts " " $i; i++ } opts = opts " " $i; i++ }
           line = "deb-src" opts
           for (; i <= NF; i++) { if ($i ~ /^#/) break; line = line " " $i }
           print line
         }' "${files[@]}"
  fi
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    # deb822 stanzas; Signed-By may be a path (kept) or an inline key (then apt's trusted parts decide).
    awk 'function flush() {
           if (types ~ /(^| )deb( |$)/ && enabled != "no" && uris != "") {
             n = split(uris, u, " "); m = split(suites, s, " ")
             opt = (signed ~ /^\//) ? " [signed-by=" signed "]" : ""
             for (i = 1; i <= n; i++) for (j = 1; j <= m; j++) print "deb-src" opt " " u[i] " " s[j] " " comps
           }
           types = uris = suites = comps = signed = enabled = ""
         }
         /^[ \t]*#/ { next }
         /^[ \t]*$/ { flush(); next }
         /^[ \t]/ { next }
         { key = tolower($1); sub(/:$/, "", key); $1 = ""; sub(/^ +/, ""); value = $0 }
         key == "types" { types = value } key == "uris" { uris = value } key == "suites" { suites = value }
         key == "components" { comps = value } key == "signed-by" { signed = value } key == "enabled" { enabled = tolower(value) }
         END { flush() }' "$f"
  done
}

apt_options=()
setup_local_apt() {
  [ ${#apt_options[@]} -gt 0 ] && return 0
  mkdir -p "$apt_dir/state/lists/partial" "$apt_dir/cache/archives/partial"
  # Only the Debian archive (and its security/updates suites): third-party repositories rarely offer deb-src.
  debian_source_entries | awk '$0 ~ /debian/' | sort -u >"$apt_dir/sources.list"
  [ -s "$apt_dir/sources.list" ] || die "no Debian archive entry found in /etc/apt/sources.list(.d)"
  log "deb-src entries: $(tr '\n' ';' <"$apt_dir/sources.list")"
  apt_options=(
    -o "Dir::Etc::SourceList=$apt_dir/sources.list"
    -o "Dir::Etc::SourceParts=/dev/null"
    -o "Dir::State=$apt_dir/state"
    -o "Dir::Cache=$apt_dir/cache"
    -o "Dir::State::status=/var/lib/dpkg/status"
    -o "APT::Sandbox::User=$(id -un)"
  )
  apt-get "${apt_options[@]}" -qq update || die "apt-get update (deb-src, project-local state) failed"
}

# Unpacks Debian's source package $1 into $2 (patched by dpkg-source) and prints its version. Tries the
# version of the installed -dev package first ($3), then every version the archive lists, newest first:
# a suite's index can name a version its pool does not serve (seen with bookworm-security behind a mirror).
fetch_debian_source() {
  local package=$1 dest=$2 wanted=$3 version
  setup_local_apt
  local candidates
  candidates=$( { [ -n "$wanted" ] && echo "$wanted"
                  apt-cache "${apt_options[@]}" showsrc "$package" 2>/dev/null | sed -n 's/^Version: //p' | sort -rV; } |
                awk '!seen[$0]++')
  for version in $candidates; do
    rm -rf "$dest"
    mkdir -p "$dest"
    if (cd "$dest" && apt-get "${apt_options[@]}" -qq source "$package=$version" >"$dest.log" 2>&1); then
      echo "$version"
      return 0
    fi
    log "$package $version could not be fetched ($(grep -m1 '^E:' "$dest.log" || echo 'no reason given')); trying the next version"
  done
  die "no version of the $package source package could be fetched (see $dest.log)"
}

# ---------------------------------------------------------------------------------------------------
# OpenSSL
openssl_prefix="$deps_dir/openssl"
openssl_marker="$openssl_prefix/.installed"
if [ "$force" -eq 1 ] || [ ! -f "$openssl_marker" ]; then
  started=$(date +%s)
  wanted=$(dpkg-query -W -f='${source:Version}' libssl-dev 2>/dev/null || true)
  src_root="$deps_dir/src/openssl"
  version=$(fetch_debian_source openssl "$src_root" "$wanted")
  src=$(find "$src_root" -mindepth 1 -maxdepth 1 -type d -name 'openssl-*' | head -1)
  [ -n "$src" ] || die "the openssl source package did not unpack"
  log "building OpenSSL $version for $triple (make -j$jobs build_libs)"
  rm -rf "$openssl_prefix"
  (
    cd "$src"
    # no-module: the legacy provider goes into libcrypto (there are no provider DLLs to ship).
    ./Configure mingw64 --cross-compile-prefix=${triple}- no-shared no-module no-tests \
      --prefix="$openssl_prefix" --libdir=lib --openssldir="$openssl_prefix/ssl" >"$src_root/configure.log" 2>&1
    make -j"$jobs" build_libs >"$src_root/build.log" 2>&1
    make install_dev >"$src_root/install.log" 2>&1
  ) || die "OpenSSL build failed; see $src_root/*.log"
  [ -f "$openssl_prefix/lib/libcrypto.a" ] || die "OpenSSL installed no libcrypto.a"
  echo "$version" >"$openssl_marker"
  rm -rf "$src"  # the objects are not needed again; the .dsc and tarballs stay for reference
  log "OpenSSL $version done in $(($(date +%s) - started)) s"
else
  log "OpenSSL $(cat "$openssl_marker") cached"
fi

# ---------------------------------------------------------------------------------------------------
# googletest
gtest_prefix="$deps_dir/googletest"
gtest_marker="$gtest_prefix/.installed"
gtest_version=$(dpkg-query -W -f='${Version}' googletest 2>/dev/null || echo unknown)
if [ "$force" -eq 1 ] || [ ! -f "$gtest_marker" ] || [ "$(cat "$gtest_marker")" != "$gtest_version" ]; then
  [ -f /usr/src/googletest/CMakeLists.txt ] || die "/usr/src/googletest is missing (install googletest)"
  started=$(date +%s)
  log "building googletest $gtest_version for $triple"
  rm -rf "$gtest_prefix" "$deps_dir/build/googletest"
  cmake -S /usr/src/googletest -B "$deps_dir/build/googletest" -G Ninja \
    -DCMAKE_TOOLCHAIN_FILE="$toolchain" -DWINCERT_WINDOWS_DEPS_DIR="$deps_dir" \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX="$gtest_prefix" \
    -DBUILD_GMOCK=ON -DINSTALL_GTEST=ON >"$deps_dir/googletest-configure.log" 2>&1 ||
    die "googletest configure failed; see $deps_dir/googletest-configure.log"
  cmake --build "$deps_dir/build/googletest" -j"$jobs" >"$deps_dir/googletest-build.log" 2>&1 ||
    die "googletest build failed; see $deps_dir/googletest-build.log"
  cmake --install "$deps_dir/build/googletest" >/dev/null
  echo "$gtest_version" >"$gtest_marker"
  log "googletest done in $(($(date +%s) - started)) s"
else
  log "googletest $gtest_version cached"
fi

# ---------------------------------------------------------------------------------------------------
# pugixml (the WinRM client's XML parser): Debian ships only a shared library, so build a static one from
# Debian's source package (the version of the installed libpugixml-dev first) with the project's toolchain.
pugixml_prefix="$deps_dir/pugixml"
pugixml_marker="$pugixml_prefix/.installed"
if [ "$force" -eq 1 ] || [ ! -f "$pugixml_marker" ]; then
  started=$(date +%s)
  wanted=$(dpkg-query -W -f='${source:Version}' libpugixml-dev 2>/dev/null || true)
  src_root="$deps_dir/src/pugixml"
  version=$(fetch_debian_source pugixml "$src_root" "$wanted")
  src=$(find "$src_root" -mindepth 1 -maxdepth 1 -type d -name 'pugixml-*' | head -1)
  [ -n "$src" ] || die "the pugixml source package did not unpack"
  log "building pugixml $version for $triple (static)"
  rm -rf "$pugixml_prefix" "$deps_dir/build/pugixml"
  cmake -S "$src" -B "$deps_dir/build/pugixml" -G Ninja \
    -DCMAKE_TOOLCHAIN_FILE="$toolchain" -DWINCERT_WINDOWS_DEPS_DIR="$deps_dir" \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX="$pugixml_prefix" -DCMAKE_INSTALL_LIBDIR=lib \
    -DBUILD_SHARED_LIBS=OFF -DPUGIXML_BUILD_TESTS=OFF >"$src_root/configure.log" 2>&1 ||
    die "pugixml configure failed; see $src_root/configure.log"
  cmake --build "$deps_dir/build/pugixml" -j"$jobs" >"$src_root/build.log" 2>&1 ||
    die "pugixml build failed; see $src_root/build.log"
  cmake --install "$deps_dir/build/pugixml" >"$src_root/install.log" 2>&1 ||
    die "pugixml install failed; see $src_root/install.log"
  [ -f "$pugixml_prefix/lib/libpugixml.a" ] || die "pugixml installed no libpugixml.a"
  echo "$version" >"$pugixml_marker"
  rm -rf "$src" "$deps_dir/build/pugixml"  # the .dsc and tarballs stay for reference
  log "pugixml $version done in $(($(date +%s) - started)) s"
else
  log "pugixml $(cat "$pugixml_marker") cached"
fi

# ---------------------------------------------------------------------------------------------------
# The Wine prefix the tests run in (cmake/wine-run.sh creates it on first use; doing it here keeps the
# slow first wineboot out of ctest's test discovery timeouts).
wine_prefix="$deps_dir/wineprefix"
if [ ! -f "$wine_prefix/.wincert-ready" ]; then
  started=$(date +%s)
  "$root/cmake/wine-run.sh" "$wine_prefix" cmd.exe /c exit 0 || die "Wine could not start in $wine_prefix"
  log "Wine prefix created in $(($(date +%s) - started)) s"
else
  log "Wine prefix cached"
fi

log "ready in $deps_dir"
