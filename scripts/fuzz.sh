#!/usr/bin/env bash
# Runs the cargo-fuzz targets (docs/fuzzing.md).
#
#   scripts/fuzz.sh            bounded, as CI runs it: a fixed seed and a fixed number of runs
#                              per target (about 20 s each on 2 cores), from fuzz/seeds
#   scripts/fuzz.sh long 3600  each target for 3600 s, keeping its corpus in fuzz/corpus/
#   scripts/fuzz.sh long 600 sync_session
#
# A crash stops the run; its input is in fuzz/artifacts/<target>/. Keep it as a regression:
# copy it to fuzz/regressions/<target>/<what-it-found> (cargo test replays every file there).
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

# Stable toolchain: libFuzzer's flags need RUSTC_BOOTSTRAP; no sanitizer (panics and the
# checks' assertions are what the targets look for; the engine has no unsafe code).
export RUSTC_BOOTSTRAP=1
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked --version 0.13.2
fi

# target:runs for the bounded run.
bounded=(
    wire_frames:1000000
    invite_code:1500000
    tdq_query:300000
    roster_ops:20000
    hub_rows:600
    sync_session:500
)

mode="${1:-bounded}"
cargo fuzz build -s none
for entry in "${bounded[@]}"; do
    target="${entry%%:*}"
    runs="${entry##*:}"
    if [ "$mode" = long ] && [ -n "${3:-}" ] && [ "$3" != "$target" ]; then
        continue
    fi
    if [ "$mode" = long ]; then
        mkdir -p "corpus/$target"
        args=("corpus/$target" "seeds/$target" -max_total_time="${2:-600}")
    else
        scratch="$(mktemp -d)"
        args=("$scratch" "seeds/$target" -seed=1 -runs="$runs" -max_total_time=120)
    fi
    echo "fuzz: $target (${args[*]:2})"
    log="$(mktemp)"
    status=0
    cargo fuzz run -s none "$target" "${args[@]:0:2}" -- "${args[@]:2}" \
        -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1 || status=$?
    grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb)|^#[0-9]+ +DONE|panicked|ERROR|Test unit written|assertion|left:|right:' "$log" || true
    if [ "$status" != 0 ]; then
        tail -40 "$log" >&2
        echo "fuzz: $target found a crash (exit $status); see fuzz/artifacts/$target/" >&2
        exit 1
    fi
done
echo "fuzz: every target ran clean"
