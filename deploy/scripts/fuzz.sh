#!/usr/bin/env bash
# Runs every fuzz target of gateway/fuzz/ with cargo-fuzz on the nightly toolchain.
#
#   deploy/scripts/fuzz.sh RUNS [TARGET...]    RUNS executions per target (e.g. 10000000), all targets
#                                              when none is named
#
# Installs cargo-fuzz (crates.io) when it is missing. Each target starts from its committed seeds
# (gateway/fuzz/seeds/<target>/) plus every input that ever crashed (gateway/fuzz/regressions/<target>/)
# and grows a working corpus outside the clone (${CONVERSA_FUZZ_DIR:-$HOME/.cache/conversa/fuzz}).
# A crash stops the run with libFuzzer's report and leaves the input in that directory's artifacts:
# copy it into gateway/fuzz/regressions/<target>/ so gateway/tests/fuzz_corpus.rs replays it forever.
# Prints one line per target: executions, seconds of fuzzing, executions per second (libFuzzer's count).
set -euo pipefail
runs="${1:?usage: fuzz.sh RUNS [TARGET...]}"
shift || true
cd "$(dirname "$0")/../../gateway/fuzz"
work="${CONVERSA_FUZZ_DIR:-$HOME/.cache/conversa/fuzz}"
mkdir -p "$work"
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked >&2
fi
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(whatsapp_webhook messenger_webhook evolution_webhook zapi_webhook ws_client_frame rest_bodies)
fi
export CARGO_TARGET_DIR="$work/target"
# Build every target first, so the figures below time fuzzing, not compiling.
cargo +nightly fuzz build >&2
for target in "${targets[@]}"; do
  corpus="$work/corpus/$target"
  mkdir -p "$corpus" "$work/artifacts/$target/" "regressions/$target"
  # One log per target and run size: a short run (the test suite's) never overwrites a long one's.
  log="$work/$target.$runs.log"
  if ! cargo +nightly fuzz run "$target" "$corpus" "seeds/$target" "regressions/$target" -- \
      -runs="$runs" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
      -artifact_prefix="$work/artifacts/$target/" -print_final_stats=1 >"$log" 2>&1; then
    tail -n 60 "$log" >&2
    echo "fuzz target $target failed; see $log and $work/artifacts/$target/" >&2
    exit 1
  fi
  # libFuzzer's own summary: "Done N runs in S second(s)" (fuzzing time, not compiling).
  summary=$(grep -aE '^Done [0-9]+ runs in [0-9]+ second' "$log" | tail -n 1)
  if [ -z "$summary" ]; then
    echo "fuzz target $target printed no summary; see $log" >&2
    exit 1
  fi
  echo "$summary" | awk -v t="$target" \
    '{ n = $2; s = $5; printf "%s: %d executions in %d s (%.0f/s)\n", t, n, s, (s > 0 ? n / s : n) }'
done
