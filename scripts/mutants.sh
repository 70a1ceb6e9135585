#!/usr/bin/env bash
# Mutation testing of the wakeup paths: how many bugs planted by a machine, not chosen
# to fit the models, the loom suite (and the runtime's own tests) catch.
#
#   scripts/mutants.sh                 everything, then loom-tests/MUTANTS.md
#   scripts/mutants.sh cargo           only cargo-mutants' mutants (three passes, below)
#   scripts/mutants.sh unsafe          only cargo-mutants' mutants of `unsafe fn`s (below)
#   scripts/mutants.sh ops             only our operators (loom-tests/mutants/operators.py)
#   scripts/mutants.sh report          only the report, from the last runs' results
#   scripts/mutants.sh cargo FILE...   cargo-mutants on some of the files (globs)
#
# Hours on two cores: too slow for .ci/run. Results go to target/mutants/; the report to
# loom-tests/MUTANTS.md. The method is in docs/loom.md.
#
# Each mutant goes through three passes, each only for the mutants the passes before
# did not kill (the loom build is optimised at level 1: it builds in about half the
# time, and the checks are the same):
#
#   1. quick: the loom suite (the runtime's lib tests under --cfg epitome_loom, which
#      are the models of runtime/src/loom_models/) with every model's preemption bound
#      capped at 2 (EPITOME_LOOM_QUICK). An execution at a lower bound is an execution
#      of the full model, so what this pass kills the full suite kills.
#   2. full: the loom suite as CI runs it.
#   3. std: the runtime's unit tests and the integration tests that reach the file
#      (std_tests below), in the normal build, for code no model reaches.
#
# cargo-mutants runs the passes as three runs into one output directory (--iterate
# skips what an earlier pass caught); each run's mutants.out is kept as pass-N-TIME.
set -euo pipefail

cd "$(dirname "$0")/.."
root=$(pwd)
out=${EPITOME_MUTANTS_OUT:-$root/target/mutants}
mkdir -p "$out"
# Incremental builds: each mutant changes one function, so the runtime rebuilds in a
# few seconds instead of tens (the caches live in cargo-mutants' scratch copies, which
# it deletes at the end).
export CARGO_INCREMENTAL=1

# The files whose decisions wake or park something (see loom-tests/WAKEUPS.md).
wakeup_files=(
    runtime/src/reactor/scheduled_io.rs
    runtime/src/reactor/waiters.rs
    runtime/src/reactor/registration.rs
    runtime/src/reactor/context.rs
    runtime/src/reactor/mod.rs
    runtime/src/eventpoll/poller.rs
    runtime/src/eventpoll/ctl.rs
    runtime/src/eventpoll/send_events.rs
    runtime/src/eventpoll/ep_poll.rs
    runtime/src/eventpoll/proxy.rs
    runtime/src/eventpoll/ready_list.rs
    runtime/src/task_core/state.rs
    runtime/src/task_core/cell.rs
    runtime/src/task_core/header.rs
    runtime/src/task_core/waker.rs
    runtime/src/task_core/join.rs
    runtime/src/task_core/list.rs
    runtime/src/scheduler/worker.rs
    runtime/src/scheduler/park.rs
    runtime/src/scheduler/queue.rs
    runtime/src/scheduler/owned.rs
    runtime/src/scheduler/local_set.rs
    runtime/src/scheduler/block_in_place.rs
    runtime/src/scheduler/context.rs
    runtime/src/time/driver.rs
    runtime/src/io/shared.rs
    runtime/src/io/wait.rs
    runtime/src/blocking/mod.rs
)

# The loom build: release with the checks of a debug build, as loom-tests/run.sh.
loom_env=(
    RUSTFLAGS="--cfg epitome_loom"
    CARGO_PROFILE_RELEASE_OPT_LEVEL=1
    CARGO_PROFILE_RELEASE_DEBUG=false
    CARGO_PROFILE_RELEASE_DEBUG_ASSERTIONS=true
    CARGO_PROFILE_RELEASE_OVERFLOW_CHECKS=true
    CARGO_PROFILE_RELEASE_INCREMENTAL=true
    RUST_BACKTRACE=0
)

# Pass 3's groups: which std tests reach a file's code. All of the runtime's tests for
# every mutant would cost over a minute each (33 test binaries to link); each group
# gets the runtime's unit tests and the integration tests (runtime, net, facade) that
# drive its code.
std_group() {
    case $1 in
        runtime/src/eventpoll/*) echo eventpoll ;;
        runtime/src/reactor/* | runtime/src/io/*) echo reactor ;;
        *) echo tasks ;;
    esac
}

std_tests() {
    local t=()
    case $1 in
        eventpoll)
            t=(--test-package epitome-runtime -C --lib)
            for x in kernel_selftests ltp_epoll differential eventpoll_own_fds data_only_modify \
                fd_kinds async_io_readiness; do t+=(-C --test -C "$x"); done
            ;;
        reactor)
            t=(--test-package epitome-runtime --test-package epitome-net --test-package epitome -C --lib)
            for x in async_io async_io_readiness data_only_modify fd_kinds reactor_assist shutdown \
                shutdown_fds worker_placement readiness tcp_stream tcp_listener poll_accept \
                stream_try_io try_budget udp_socket reactor_wake_one; do t+=(-C --test -C "$x"); done
            ;;
        tasks)
            t=(--test-package epitome-runtime -C --lib)
            for x in abort block_in_place block_on_threads blocking budget enter_guard join_error \
                join_set local_set metrics panic_drop runtime scheduler shutdown shutdown_threads \
                spawn_local task task_id time tls_shutdown worker_placement reactor_assist; do
                t+=(-C --test -C "$x")
            done
            ;;
    esac
    echo "${t[@]}"
}

# cargo-mutants' passes over `$@` (files). EPITOME_MUTANTS_PASSES picks the passes
# (default "1 2 3"); EPITOME_MUTANTS_RESUME=1 keeps the results so far and tests only
# what no earlier run killed (a run stopped part-way goes on). Each pass's results are
# kept as pass-N-TIME; the report reads them all.
cargo_passes() {
    local files=("$@") args=() dir=$out/cargo
    for f in "${files[@]}"; do args+=(-f "$f"); done
    mkdir -p "$dir"
    if [[ -z ${EPITOME_MUTANTS_RESUME:-} ]]; then
        rm -rf "$dir/mutants.out" "$dir/mutants.out.old" "$dir"/pass-*
    fi
    # Test code is not the code under test (cargo-mutants skips only `#[cfg(test)]`
    # modules; ours are `#[cfg(all(test, not(epitome_loom)))]`).
    local common=(-p epitome-runtime "${args[@]}" -o "$dir" --no-shuffle --colors never
        --exclude-re 'tests::')
    # Mutants recorded as equivalent (loom-tests/mutants/equivalent.txt) skip passes 2
    # and 3: they cannot be killed, and those passes cost half a minute or more each.
    local skip_equivalent=()
    while IFS= read -r re; do
        skip_equivalent+=(--exclude-re "$re")
    done < <(python3 -c '
import sys
def esc(t):
    return "".join("\\" + c if c in "\\.+*?()|[]{}^$" else c for c in t)
for line in open(sys.argv[1]):
    name = line.split("\t")[0].strip()
    if not name or name.startswith("#") or " [" in name:
        continue
    path, _, col, desc = name.split(":", 3)
    print(esc(path) + r":\d+:" + col + ": " + esc(desc.strip()) + "$")
' loom-tests/mutants/equivalent.txt)
    local passes=${EPITOME_MUTANTS_PASSES:-1 2 3} iterate=()
    [[ -e $dir/mutants.out ]] && iterate=(--iterate --baseline skip)
    for pass in $passes; do
        case $pass in
            1)
                echo "== cargo-mutants, pass 1: quick loom suite" >&2
                # On a resumed run, what is recorded equivalent has its pass-1 result.
                local skip=()
                ((${#iterate[@]})) && skip=("${skip_equivalent[@]}")
                env "${loom_env[@]}" EPITOME_LOOM_QUICK=1 cargo mutants "${common[@]}" "${iterate[@]}" \
                    "${skip[@]}" --profile release -C --lib --timeout 120 --build-timeout 900 \
                    -- -- --test-threads=2 || true
                ;;
            2)
                echo "== cargo-mutants, pass 2: full loom suite, for the survivors" >&2
                env "${loom_env[@]}" cargo mutants "${common[@]}" "${iterate[@]}" \
                    "${skip_equivalent[@]}" \
                    --profile release -C --lib --timeout 600 --build-timeout 900 \
                    -- -- --test-threads=2 || true
                ;;
            3)
                # One run per group of files, each with the tests that reach it.
                local group gfiles gargs
                for group in eventpoll reactor tasks; do
                    gfiles=() gargs=()
                    for f in "${files[@]}"; do
                        [[ $(std_group "$f") == "$group" ]] && gfiles+=(-f "$f")
                    done
                    ((${#gfiles[@]})) || continue
                    read -ra gargs <<<"$(std_tests "$group")"
                    echo "== cargo-mutants, pass 3 ($group): the std tests, for the survivors" >&2
                    cargo mutants -p epitome-runtime "${gfiles[@]}" -o "$dir" --no-shuffle \
                        --colors never --exclude-re 'tests::' "${iterate[@]}" "${skip_equivalent[@]}" \
                        "${gargs[@]}" --timeout 300 --build-timeout 900 || true
                    cp -r "$dir/mutants.out" "$dir/pass-3-$(date +%s)"
                    iterate=(--iterate --baseline skip)
                done
                continue
                ;;
        esac
        cp -r "$dir/mutants.out" "$dir/pass-$pass-$(date +%s)"
        iterate=(--iterate --baseline skip)
    done
}

# cargo-mutants does not mutate `unsafe fn`s, and some wakeup decisions live in them
# (ScheduledIo::poll_waiter / drop_waiter, the waiter list, the task vtable's entry
# points). For those, a copy of the tree with `unsafe fn` made `fn` (the bodies keep
# their `unsafe {}` blocks, so it builds, with unused-unsafe warnings) goes through
# pass 1 as the tree does, testing only the mutants of functions that were unsafe
# (listed in unsafe/selected.json for the report). Same names, same lines.
unsafe_passes() {
    local files=("$@") dir=$out/unsafe src=$out/unsafe/src args=()
    rm -rf "$src"
    mkdir -p "$src"
    git ls-files -z | xargs -0 cp --parents -t "$src"
    find "$src/runtime/src" -name '*.rs' -exec sed -i -E 's/\bunsafe fn ([A-Za-z_])/fn \1/g' {} +
    for f in "${files[@]}"; do args+=(-f "$f"); done
    (cd "$src" && cargo mutants -p epitome-runtime "${args[@]}" --list --json --exclude-re 'tests::') \
        >"$dir/listed.json"
    python3 - "$dir" "${files[@]}" <<'PY'
import json, os, re, sys
d, files = sys.argv[1], sys.argv[2:]
listed = json.load(open(os.path.join(d, "listed.json")))
original = {f: open(f).read().split("\n") for f in files}

def was_unsafe(m):
    fn = m["function"]
    if not fn:
        return False
    name = re.escape(fn["function_name"].split("::")[-1])
    lines = original[m["file"]]
    first = fn["span"]["start"]["line"] - 1
    for line in lines[first:fn["span"]["end"]["line"]]:
        if re.search(r"\bfn " + name + r"\b", line):
            return bool(re.search(r"\bunsafe fn " + name + r"\b", line))
    return False

selected = [m for m in listed if was_unsafe(m)]
json.dump(selected, open(os.path.join(d, "selected.json"), "w"))
names = {m["name"] for m in selected}
os.makedirs(os.path.join(d, "mutants.out"), exist_ok=True)
# --iterate skips what previously_caught.txt names: here, every mutant of a safe fn
# (the tree's own run measures those).
skip = [m["name"] for m in listed if m["name"] not in names]
prev = os.path.join(d, "mutants.out", "previously_caught.txt")
if os.path.exists(os.path.join(d, "mutants.out", "outcomes.json")):
    done = {o["scenario"]["Mutant"]["name"] for o in json.load(open(os.path.join(d, "mutants.out", "outcomes.json")))["outcomes"]
            if isinstance(o["scenario"], dict) and o["summary"] in ("CaughtMutant", "Unviable", "Timeout")}
    skip += sorted(done & names)
open(prev, "w").write("\n".join(skip) + "\n")
print(f"{len(selected)} mutants of unsafe fns in {len(files)} files", file=sys.stderr)
PY
    echo "== cargo-mutants, unsafe fns, pass 1: quick loom suite" >&2
    (cd "$src" && env "${loom_env[@]}" EPITOME_LOOM_QUICK=1 cargo mutants -p epitome-runtime "${args[@]}" \
        -o "$dir" --no-shuffle --colors never --exclude-re 'tests::' --iterate --baseline skip \
        --profile release -C --lib --timeout 120 --build-timeout 900 -- -- --test-threads=2) || true
    cp -r "$dir/mutants.out" "$dir/pass-1-$(date +%s)"
    rm -rf "$src"
}

ops_passes() {
    python3 loom-tests/mutants/operators.py run --out "$out/ops" "$@"
}

report() {
    python3 loom-tests/mutants/report.py --cargo "$out/cargo" --ops "$out/ops" --unsafe "$out/unsafe" \
        --equivalent loom-tests/mutants/equivalent.txt \
        --survivors loom-tests/mutants/survivors.txt --write loom-tests/MUTANTS.md "${wakeup_files[@]}"
}

what=${1:-all}
shift || true
case $what in
    cargo) cargo_passes "${@:-${wakeup_files[@]}}" ;;
    ops) ops_passes "${@:-${wakeup_files[@]}}" ;;
    unsafe) unsafe_passes "${@:-${wakeup_files[@]}}" ;;
    report) report ;;
    all)
        cargo_passes "${wakeup_files[@]}"
        unsafe_passes "${wakeup_files[@]}"
        ops_passes "${wakeup_files[@]}"
        report
        ;;
    *)
        echo "usage: $0 [all|cargo|unsafe|ops|report] [FILE...]" >&2
        exit 2
        ;;
esac
