#!/usr/bin/env bash
# Builds every fuzz target once, then runs each for SECONDS (default 60)
# from its seed corpus (fuzz/corpus/<target>) plus whatever earlier runs
# found (fuzz/work/<target>, not in git). Fails if any target crashes,
# hangs past the per-input timeout or runs out of memory, printing the
# input that did it and how to reproduce and minimise it.
#
#   fuzz/run.sh [SECONDS]
#
# On the stable toolchain: cargo-fuzz passes rustc flags that are
# nightly-only (-Z...), which RUSTC_BOOTSTRAP=1 lets a stable rustc accept.
# No sanitizer: ustack-core forbids unsafe code, so AddressSanitizer would
# only slow the search; debug assertions and overflow checks stay on.
set -euo pipefail
cd "$(dirname "$0")"

secs=${1:-60}
targets=(wire_parsers stack_frames tcp_conversation)
export RUSTC_BOOTSTRAP=1
fuzz=(cargo fuzz)
flags=(--sanitizer none)

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "error: cargo-fuzz is not installed: cargo install cargo-fuzz --locked" >&2
    exit 1
fi

echo "fuzz: building ${targets[*]}"
"${fuzz[@]}" build "${flags[@]}"

failed=()
for t in "${targets[@]}"; do
    mkdir -p "work/$t" "artifacts/$t"
    before=$(ls "artifacts/$t")
    log="artifacts/$t/last-run.log"
    echo "fuzz: $t for ${secs}s"
    status=0
    "${fuzz[@]}" run "${flags[@]}" "$t" "work/$t" "corpus/$t" -- \
        -max_total_time="$secs" -timeout=20 -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1 || status=$?
    # The last status line: coverage, corpus and speed.
    grep -aE '^#[0-9]+' "$log" | tail -n 1 | sed "s/^/fuzz: $t: /" || true
    grep -aE '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "$log" | sed "s/^/fuzz: $t: /" || true
    new=$(comm -13 <(echo "$before" | sort) <(ls "artifacts/$t" | grep -E '^(crash|timeout|oom|leak)-' | sort) || true)
    if [ "$status" -ne 0 ] || [ -n "$new" ]; then
        failed+=("$t")
        echo "fuzz: $t FAILED (exit $status); the end of its log ($log):" >&2
        grep -aE 'panicked at|ERROR: libFuzzer|SUMMARY' -A2 "$log" | head -n 30 >&2 || tail -n 30 "$log" >&2
        for f in $new; do
            echo "fuzz: crash input: fuzz/artifacts/$t/$f" >&2
            echo "  reproduce: (cd fuzz && RUSTC_BOOTSTRAP=1 USTACK_FUZZ_TRACE=1 cargo fuzz run -s none $t artifacts/$t/$f)" >&2
            echo "  minimise:  (cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz tmin -s none $t artifacts/$t/$f)" >&2
        done
    fi
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz: crashes in ${failed[*]}" >&2
    exit 1
fi
echo "fuzz: ${#targets[@]} targets ran ${secs}s each without a crash"
