#!/usr/bin/env bash
# Reliability: faults, soak, fuzzing, sanitizers and valgrind, in one run, with a
# results table in target/reliability/RESULTS.md.
#
#   scripts/reliability.sh            # full: 1-hour soak, 10 minutes per fuzz target,
#                                     # the sanitizers over the wider test set
#   scripts/reliability.sh --short    # what .ci/run runs: 60 s soak, 15 s per fuzz
#                                     # target, the sanitizers over a smaller set
#
# Environment: SOAK_SECONDS and FUZZ_SECONDS override the durations.
#
# Every step runs even when an earlier one failed, so the table is complete; the
# script exits non-zero if any step failed. A step that cannot run on this machine
# (no valgrind, no rust-src for -Zbuild-std) is recorded as "not run", with why,
# and fails the run too: a check that silently does not happen is not a check.
set -uo pipefail
cd "$(dirname "$0")/.."

mode=full
case "${1:-}" in
    --short) mode=short ;;
    "") ;;
    *) echo "usage: scripts/reliability.sh [--short]" >&2; exit 2 ;;
esac
if [[ $mode == short ]]; then
    soak_seconds=${SOAK_SECONDS:-60}
    fuzz_seconds=${FUZZ_SECONDS:-15}
else
    soak_seconds=${SOAK_SECONDS:-3600}
    fuzz_seconds=${FUZZ_SECONDS:-600}
fi

out=target/reliability
mkdir -p "$out"
logs=$out/logs
rm -rf "$logs"
mkdir -p "$logs"
rows=()
failed=0
target_triple=$(rustc -vV | sed -n 's/^host: //p')

# row STEP RESULT FIGURES SECONDS
row() { rows+=("| $1 | $2 | $3 | $4 s |"); }

# run NAME LOG CMD...: runs CMD with its output in LOG; returns its status and
# leaves the elapsed seconds in $elapsed.
run() {
    local name=$1 log=$2
    shift 2
    printf '\n== %s\n' "$name"
    local start=$SECONDS
    "$@" >"$log" 2>&1
    local status=$?
    elapsed=$((SECONDS - start))
    if ((status == 0)); then
        echo "   passed in ${elapsed} s (log: $log)"
    else
        echo "   FAILED (status $status) in ${elapsed} s; the end of $log:"
        tail -40 "$log" | sed 's/^/   | /'
        failed=1
    fi
    return $status
}

verdict() { if (($1 == 0)); then echo pass; else echo "**FAIL**"; fi; }

# --- Fault tests: the facade's tests/faults.rs and the EMFILE test of epitome-net.
run "fault tests (tests/faults.rs)" "$logs/faults.log" \
    cargo test --all-features -p epitome --test faults -- --nocapture --test-threads=1
status=$?
figures=$(grep -o 'RELIABILITY .*' "$logs/faults.log" | sed 's/^RELIABILITY //' | paste -sd ';' - | sed 's/;/; /g')
row "faults: reset mid-write, half-close both ways, 1000 slowloris + 100 good clients, 64 MiB each way, cancellation fuzzer" \
    "$(verdict $status)" "${figures:-none printed}" "$elapsed"

run "accept at EMFILE (net/tests/tcp_listener.rs, child process)" "$logs/emfile.log" \
    cargo test --all-features -p epitome-net --test tcp_listener accept_at_emfile -- --nocapture
status=$?
figures=$(grep -o 'emfile (.*' "$logs/emfile.log" | paste -sd ';' - | sed 's/;/; /g')
row "accept at EMFILE: keeps serving, < 5% CPU at the limit, resumes" \
    "$(verdict $status)" "${figures:-none printed}" "$elapsed"

# --- Soak: churn against an epitome server in a child process.
run "soak, ${soak_seconds} s" "$logs/soak.log" \
    cargo run --release -q -p epitome-benches -- soak --duration "$soak_seconds"
status=$?
figures=$(grep '^SOAK ' "$logs/soak.log" | tail -1 | sed 's/^SOAK //')
row "soak ${soak_seconds} s: clients connect, echo, check every byte, disconnect (close, half-close, reset)" \
    "$(verdict $status)" "${figures:-no SOAK line}" "$elapsed"

# --- Fuzzing: each target for a fixed time, on a copy of the committed corpus (so
# a CI run never rewrites it; grow it with `cargo fuzz run <target>` by hand).
fuzz_env=(env RUSTC_BOOTSTRAP=1)
if ! command -v cargo-fuzz >/dev/null 2>&1 && [[ ! -x $HOME/.cargo/bin/cargo-fuzz ]]; then
    row "fuzz (every target)" "**not run**" "cargo-fuzz is not installed (cargo install cargo-fuzz)" 0
    failed=1
elif run "fuzz: build the targets" "$logs/fuzz-build.log" \
    bash -c 'cd fuzz && "$@"' _ "${fuzz_env[@]}" cargo fuzz build -O; then
    for target in $(cd fuzz && "${fuzz_env[@]}" cargo fuzz list); do
        corpus=$(mktemp -d)
        cp -r "fuzz/corpus/$target/." "$corpus/" 2>/dev/null
        before=$(find "$corpus" -type f | wc -l)
        run "fuzz $target, ${fuzz_seconds} s" "$logs/fuzz-$target.log" \
            bash -c 'cd fuzz && "$@"' _ "${fuzz_env[@]}" cargo fuzz run -O "$target" "$corpus" -- \
            -max_total_time="$fuzz_seconds" -print_final_stats=1
        status=$?
        execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$logs/fuzz-$target.log" | tail -1)
        after=$(find "$corpus" -type f | wc -l)
        rm -rf "$corpus"
        row "fuzz \`$target\`" "$(verdict $status)" \
            "${execs:-?} executions; corpus ${before} -> ${after} inputs" "$elapsed"
    done
else
    row "fuzz: build" "**FAIL**" "see $logs/fuzz-build.log" "$elapsed"
fi

# --- Sanitizers: the stable toolchain with RUSTC_BOOTSTRAP=1 and -Zbuild-std (std
# instrumented too, which ThreadSanitizer needs to see std's synchronisation), each
# in its own target directory.
sysroot=$(rustc --print sysroot)
if [[ ! -d $sysroot/lib/rustlib/src/rust/library ]]; then
    row "AddressSanitizer, ThreadSanitizer" "**not run**" \
        "rust-src is not installed (rustup component add rust-src), so -Zbuild-std cannot build std" 0
    failed=1
else
    # The sets, one cargo invocation per package: the runtime's unit tests (data
    # structures, tasks, reactor, timers) and the integration tests of tasks, the
    # scheduler, the reactor's I/O and TCP; the full mode runs every test of the
    # runtime and net packages.
    if [[ $mode == short ]]; then
        asan_sets=("-p epitome-runtime --lib --test task --test scheduler --test async_io"
            "-p epitome-net --test tcp_stream")
        tsan_sets=("-p epitome-runtime --lib --test task --test scheduler --test reactor_assist")
    else
        asan_sets=("-p epitome-runtime" "-p epitome-net")
        tsan_sets=("-p epitome-runtime" "-p epitome-net")
    fi
    for sanitizer in address thread; do
        if [[ $sanitizer == address ]]; then sets=("${asan_sets[@]}"); else sets=("${tsan_sets[@]}"); fi
        # detect_leaks=0: LeakSanitizer needs ptrace, which containers may refuse;
        # leaks are valgrind's job below.
        run "${sanitizer} sanitizer: ${sets[*]}" "$logs/san-$sanitizer.log" \
            env RUSTC_BOOTSTRAP=1 \
            RUSTFLAGS="-Zsanitizer=$sanitizer" \
            RUSTDOCFLAGS="-Zsanitizer=$sanitizer" \
            CARGO_TARGET_DIR="target/san-$sanitizer" \
            ASAN_OPTIONS="detect_leaks=0" \
            TSAN_OPTIONS="halt_on_error=1" \
            bash -c 'for set in "${@:2}"; do
                         cargo test -Zbuild-std --target "$1" $set -- --test-threads=2 || exit
                     done' _ "$target_triple" "${sets[@]}"
        status=$?
        tests=$(grep -o '^test result: ok. [0-9]* passed' "$logs/san-$sanitizer.log" |
            awk '{s += $4} END {print s + 0}')
        reports=$(grep -c -E '^(==[0-9]+==ERROR: AddressSanitizer|WARNING: ThreadSanitizer)' \
            "$logs/san-$sanitizer.log")
        row "${sanitizer} sanitizer (-Zbuild-std): \`$(printf '%s; ' "${sets[@]}" | sed 's/; $//')\`" \
            "$(verdict $status)" "$tests tests passed, $reports sanitizer reports" "$elapsed"
    done
fi

# --- valgrind memcheck over the data structures' unit tests.
if ! command -v valgrind >/dev/null 2>&1; then
    row "valgrind memcheck" "**not run**" "valgrind is not installed" 0
    failed=1
else
    filters=(eventpoll::rbtree eventpoll::ready_list time::wheel)
    bin=$(cargo test -p epitome-runtime --lib --no-run --message-format=json 2>/dev/null |
        sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -1)
    if [[ -z $bin ]]; then
        row "valgrind memcheck" "**FAIL**" "the runtime's unit-test binary did not build" 0
        failed=1
    else
        run "valgrind memcheck: ${filters[*]}" "$logs/valgrind.log" \
            valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect \
            "$bin" --test-threads=1 "${filters[@]}"
        status=$?
        tests=$(sed -n 's/^test result: ok. \([0-9]*\) passed.*/\1/p' "$logs/valgrind.log")
        errors=$(sed -n 's/.*ERROR SUMMARY: \([0-9]*\) errors.*/\1/p' "$logs/valgrind.log" | tail -1)
        leaked=$(sed -n 's/.*definitely lost: \([0-9,]*\) bytes.*/\1/p' "$logs/valgrind.log" | tail -1)
        row "valgrind memcheck: unit tests of the interest tree, ready list, timer wheel" \
            "$(verdict $status)" "${tests:-?} tests, ${errors:-?} errors, definitely lost ${leaked:-0} bytes" \
            "$elapsed"
    fi
fi

{
    echo "# Reliability results"
    echo
    echo "scripts/reliability.sh ${1:-} on $(date -u +%Y-%m-%dT%H:%MZ), $(uname -sr), $(nproc) CPUs, $(rustc -V)"
    echo
    echo "| check | result | figures | time |"
    echo "|---|---|---|---|"
    printf '%s\n' "${rows[@]}"
} >"$out/RESULTS.md"
printf '\n'
cat "$out/RESULTS.md"
echo
echo "logs: $logs/"
exit $failed
