#!/usr/bin/env bash
# Builds every libFuzzer target of the "fuzz" preset (clang, ASan+UBSan) and runs each one for a bounded time
# on a seed corpus made from the shared fixtures. Exits non-zero when a fuzzer crashes or fails to build.
#
#   scripts/run-fuzzers.sh [seconds-per-fuzzer]      (default 20)
#
# Environment: WINCERT_FUZZ_BUILD_DIR (default build/fuzz), WINCERT_SHARED_DIR (default ../shared),
# WINCERT_FUZZ_KEEP=1 keeps the temporary corpus directory, WINCERT_FUZZ_ONLY="fuzz_x fuzz_y" runs only those.
set -euo pipefail

seconds=${1:-20}
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [ "$seconds" -lt 1 ]; then
  echo "usage: $0 [seconds-per-fuzzer]" >&2
  exit 2
fi
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${WINCERT_FUZZ_BUILD_DIR:-$root/build/fuzz}
shared=${WINCERT_SHARED_DIR:-$root/../shared}
fixtures=$shared/fixtures

echo "== configuring preset fuzz in $build"
(cd "$root" && cmake --preset fuzz -B "$build" >/dev/null)

# Every fuzz_* target any module defines (ninja lists one phony alias per CMake target).
mapfile -t targets < <(ninja -C "$build" -t targets all | sed -n 's/^\(fuzz_[A-Za-z0-9_]*\): phony$/\1/p' | sort -u)
# WINCERT_FUZZ_ONLY="fuzz_a fuzz_b" runs only those targets.
if [ -n "${WINCERT_FUZZ_ONLY:-}" ]; then
  mapfile -t targets < <(printf '%s\n' "${targets[@]}" | grep -Fxf <(tr ' ' '\n' <<<"$WINCERT_FUZZ_ONLY") || true)
fi
if [ "${#targets[@]}" -eq 0 ]; then
  echo "no fuzz_* targets found in $build" >&2
  exit 1
fi
echo "== fuzzers: ${targets[*]}"

work=$(mktemp -d "${TMPDIR:-/tmp}/wincert-fuzz.XXXXXX")
cleanup() { if [ "${WINCERT_FUZZ_KEEP:-0}" != 1 ] && [ "${keep_work:-0}" != 1 ]; then rm -rf "$work"; fi; }
trap cleanup EXIT

# Seed corpus: the real recorded traffic and data, copied (fixtures are read-only and stay untouched).
seeds=$work/seeds
mkdir -p "$seeds"
for f in "$fixtures"/winrm/winrb/*.xml "$fixtures"/winrm/clixml/*.xml "$fixtures"/ntlm/ntlm_* "$fixtures"/jobs/*.json \
         "$root"/tests/fuzz/seeds/*/* "$root"/certstore/scripts/*.contract.json; do
  [ -f "$f" ] && cp "$f" "$seeds/$(basename "$(dirname "$f")")_$(basename "$f")"
done
# Seeds kept in the repository for inputs the fixtures do not cover (tests/fuzz/corpus/<area>/*).
for f in "$root"/tests/fuzz/corpus/*/*; do
  [ -f "$f" ] && cp "$f" "$seeds/corpus_$(basename "$(dirname "$f")")_$(basename "$f")"
done
# PKCS#12, X.509 and CSR files: the certstore test data and Debian's python3-cryptography-vectors.
vectors=$(/usr/bin/python3 -c 'import cryptography_vectors, os; print(os.path.dirname(cryptography_vectors.__file__))' 2>/dev/null || true)
for f in "$root"/tests/certstore/data/*.p12 "$root"/tests/certstore/data/*.pfx "$root"/tests/certstore/data/*.pem \
         ${vectors:+"$vectors"/pkcs12/*.p12 "$vectors"/x509/*.pem "$vectors"/x509/*.der "$vectors"/x509/requests/*}; do
  [ -f "$f" ] && cp "$f" "$seeds/certs_$(basename "$f")"
done
# Each recorded request/response of the pypsrp transcripts as its own seed.
if [ -d "$fixtures/winrm/pypsrp" ] && /usr/bin/python3 -c 'import yaml' 2>/dev/null; then
  /usr/bin/python3 - "$fixtures/winrm/pypsrp" "$seeds" <<'PY'
import pathlib, sys, yaml
src, dst = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
for path in sorted(src.glob("*.yml")):
    for i, message in enumerate(yaml.safe_load(path.read_text())["messages"]):
        for kind in ("request", "response"):
            if isinstance(message.get(kind), str):
                (dst / f"{path.stem}_{i}_{kind}.xml").write_text(message[kind])
PY
fi
# The PSRP transcripts: each decoded fragment payload (creationXml, Arguments, Stream), behind the parameter
# byte fuzz_psrp_fragments reads first, and each reassembled message's CLIXML body.
if [ -d "$fixtures/winrm/pypsrp-psrp" ] && /usr/bin/python3 -c 'import yaml' 2>/dev/null; then
  /usr/bin/python3 - "$fixtures/winrm/pypsrp-psrp" "$seeds" <<'PY'
import base64, pathlib, re, struct, sys, yaml
src, dst = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
payload = re.compile(r"<(?:\w+:)?(?:creationXml|Arguments|Stream)\b[^>]*>([^<]+)<")
for path in sorted(src.glob("*.yml")):
    for i, message in enumerate(yaml.safe_load(path.read_text())["messages"]):
        for kind in ("request", "response"):
            text = message.get(kind)
            if not isinstance(text, str):
                continue
            for j, b64 in enumerate(payload.findall(text)):
                raw = base64.b64decode(b64)
                (dst / f"psrp_{path.stem}_{i}_{kind}_{j}.frag").write_bytes(b"\x07" + raw)
                pos = 0
                while pos + 21 <= len(raw):
                    length = struct.unpack(">I", raw[pos + 17:pos + 21])[0]
                    body = raw[pos + 21 + 40:pos + 21 + length]
                    if body:
                        (dst / f"psrp_{path.stem}_{i}_{kind}_{j}_{pos}.xml").write_bytes(body)
                    pos += 21 + length
PY
fi
echo "== seed corpus: $(ls "$seeds" | wc -l) files"

failed=()
for target in "${targets[@]}"; do
  echo "== building $target"
  if ! cmake --build "$build" --target "$target" -j2 >"$work/$target.build.log" 2>&1; then
    tail -30 "$work/$target.build.log"
    echo "!! $target failed to build" >&2
    failed+=("$target (build)")
    continue
  fi
  exe=$(find "$build" -type f -name "$target" -perm -u+x | head -1)
  corpus=$work/corpus/$target
  artifacts=$work/artifacts
  mkdir -p "$corpus" "$artifacts"
  cp "$seeds"/* "$corpus"/
  echo "== running $target for ${seconds}s"
  set +e
  ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
    "$exe" -max_total_time="$seconds" -timeout=25 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$artifacts/$target-" "$corpus" >"$work/$target.log" 2>&1
  rc=$?
  set -e
  grep -E '^stat::number_of_executed_units|^stat::peak_rss_mb' "$work/$target.log" | sed "s/^/   $target /" || true
  if [ "$rc" -ne 0 ]; then
    grep -E 'ERROR|SUMMARY|runtime error|Test unit written' "$work/$target.log" | head -20 >&2 || true
    echo "!! $target crashed (exit $rc); log $work/$target.log, artifacts in $artifacts" >&2
    failed+=("$target")
    keep_work=1
  fi
done

if [ "${#failed[@]}" -ne 0 ]; then
  echo "== FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "== all ${#targets[@]} fuzzers ran ${seconds}s without a crash"
