#!/usr/bin/env bash
# Runs every loom model of epitome's wakeup paths, then every planted bug ("mutant"),
# each expected to make the model that guards it fail, and prints a table.
#
#   loom-tests/run.sh            run everything, print the table
#   loom-tests/run.sh --record   ... and write it to loom-tests/RESULTS.md
#
# Exits non-zero if a model fails or a mutant is not caught.
#
# The models are unit tests of epitome-runtime in its loom build (runtime/src/loom_models/,
# one file per model family). One build: release mode with debug assertions and overflow
# checks on (the runtime's state-word asserts are part of what the models check),
# RUSTFLAGS="--cfg epitome_loom", in target/loom/models. Each planted bug is a
# `planted_bug!` site, taken when EPITOME_LOOM_MUTANT names it (in this build only; a
# `--cfg epitome_loom_mutant="NAME"` build plants it too), so every mutant runs from the
# same binary. Preemption bounds are set per model in the model files
# (`LOOM_MAX_PREEMPTIONS` overrides them all). A machine-made measure of the models is
# scripts/mutants.sh (loom-tests/MUTANTS.md).
set -uo pipefail

cd "$(dirname "$0")/.."
root=$(pwd)
base_dir=${EPITOME_LOOM_TARGET:-$root/target/loom}
logs=$base_dir/logs
mkdir -p "$logs"
record=false
[[ "${1:-}" == "--record" ]] && record=true

# Release, with the checks a debug build has; no debuginfo (faster to build). The
# dependencies that only parse LOOM_LOG's filter are built unoptimised.
export CARGO_PROFILE_RELEASE_DEBUG=false
export CARGO_PROFILE_RELEASE_DEBUG_ASSERTIONS=true
export CARGO_PROFILE_RELEASE_OVERFLOW_CHECKS=true
export RUST_BACKTRACE=0
cargo_config=()
for pkg in regex-automata regex-syntax tracing-subscriber matchers sharded-slab; do
    cargo_config+=(--config "profile.release.package.$pkg.opt-level=0")
done

# Which model (model file, test function, model name as printed) guards each mutant.
# mutant | model file | test function | loom model
mutants=(
    "clear_without_generation|readiness_clear|a_newer_event_is_never_erased|readiness_clear"
    "slot_no_recheck|waiter_registration|fast_path_no_lost_wakeup|waiter_registration/fast_path"
    "waiter_stale_readiness|waiter_registration|waiter_node_no_lost_wakeup|waiter_registration/waiter_node"
    "slot_replaces_other_waker|waiter_registration|two_tasks_on_the_fast_path|waiter_registration/two_fast_paths"
    "wake_all_leaves_readiness|waiter_registration|registration_beside_wake_all|waiter_registration/beside_wake_all"
    "no_baton|exclusive_baton|a_dropped_waiter_passes_the_wakeup_on|exclusive_baton"
    "wake_all_exclusive|exclusive_baton|a_dropped_waiter_passes_the_wakeup_on|exclusive_baton"
    "baton_not_passed|exclusive_baton|a_finished_waiter_passes_readiness_on|exclusive_baton/pass_if_ready"
    "list_cleared_under_a_node|exclusive_baton|each_event_wakes_the_next_exclusive_waiter|exclusive_baton/one_per_event"
    "ready_double_link|ready_list|never_linked_twice_never_lost|ready_list"
    "poller_no_handoff|eventpoll_waiters|level_triggered_event_reaches_both|eventpoll_waiters/level_reaches_both"
    "fast_path_ignores_waiters|eventpoll_waiters|a_non_blocking_wait_never_strands_a_blocked_one|eventpoll_waiters/nonblocking_beside_blocked"
    "data_only_ignores_waiters|eventpoll_waiters|a_data_only_modify_beside_a_waiter_leaves_out_only_no_ops|eventpoll_waiters/data_only_modify"
    "wake_while_running_lost|task_state|wake_while_running_polls_again_exactly_once|task_state/wake_while_running"
    "complete_relaxed|task_state|join_handle_vs_completion|task_state/join_handle_vs_completion"
    "join_waker_not_woken|task_state|join_handle_vs_completion|task_state/join_handle_vs_completion"
    "turn_drops_wakes|reactor_turn|registered_read|reactor_turn/registered_read"
    "first_wait_never_registers|reactor_turn|deferred_read|reactor_turn/deferred_read"
    "first_wait_ignores_shutdown|reactor_turn|first_wait_vs_shutdown|reactor_turn/first_wait_vs_shutdown"
    "deregister_drops_wakes|reactor_turn|deregister_vs_wait|reactor_turn/deregister_vs_wait"
    "park_no_recheck|park|remote_wake_vs_park|park/remote_wake"
    "timer_key_no_generation|timer|a_late_cancel_never_removes_another_timer|timer/cancel_vs_fire"
    "reset_no_unpark|timer|a_reset_earlier_unparks_the_owner_once|timer/reset_vs_owner"
    "push_closed_outside_lock|shutdown|spawns_vs_close|shutdown/spawn_vs_close"
    "first_writer_no_modify|first_wait|reader_and_writer_first_waits|first_wait/reader_and_writer"
    "loser_keeps_its_add|first_wait|two_first_waits_on_two_reactors|first_wait/two_adders_two_reactors"
    "timed_out_skips_checkin|eventpoll_waiters|a_timed_out_wait_awaits_the_checkin|eventpoll_waiters/timed_out_awaits_checkin"
    "bit_wait_no_second_look|bit_wait|priority_wait_vs_urgent_data|bit_wait/priority_vs_event"
    "bit_wait_ignores_gone|bit_wait|error_wait_vs_shutdown|bit_wait/error_vs_shutdown"
    "hand_event_no_wake|shared_hand_on|hand_on_to_an_exclusive_waiter|shared_hand_on/to_exclusive_waiter"
    "pollers_not_woken|shared_hand_on|hand_on_to_a_poller|shared_hand_on/to_poller"
    "relay_drops_event|shared_hand_on|relay_to_the_home_waiter|shared_hand_on/relay"
    "assume_ready_no_wake|waiter_registration|assume_ready_vs_fast_path|waiter_registration/assume_ready"
    "local_set_remote_no_wake|local_set|a_remote_wake_racing_the_sets_poll_is_never_lost|local_set/remote_wake"
    "push_remote_no_unpark|worker|remote_wake_vs_the_worker_loop|worker/remote_wake"
    "assist_no_repost|worker|a_stand_in_reposts_the_wakeup_it_took|worker/assist_repost"
    "pool_no_notify|blocking_pool|a_closure_for_an_idle_thread_wakes_it|blocking_pool/idle_thread"
    "main_waker_no_unpark|worker|block_on_woken_from_another_thread|worker/block_on_wake"
    "take_back_no_unpark|block_in_place|a_lent_worker_runs_its_task_and_comes_back|block_in_place/lend"
    "timer_unpark_lost|worker|a_timer_registered_from_another_thread_wakes_the_worker|worker/remote_timer"
    "no_timed_sleep_beside_siblings|worker|a_worker_beside_an_awake_sibling_sleeps_in_stretches|worker/timed_assist"
    "baton_not_handed_on|shared_hand_on|the_baton_goes_on_to_another_worker|shared_hand_on/baton_onward"
    "busy_release_by_store|readiness_clear|a_shutdown_during_the_slots_release_is_never_lost|readiness_clear/shutdown_in_publish"
    "queued_closure_not_cancelled|blocking_pool|shutdown_cancels_a_closure_no_thread_took|blocking_pool/shutdown_cancel"
    "pass_on_without_poll|shared_hand_on|pause_and_pass_on_follow_their_rules|shared_hand_on/pause_rules"
    "wake_onto_another_worker|worker|a_wake_from_another_workers_task_goes_to_the_owner|worker/cross_worker_wake"
)

start=$(date +%s)
failed=0

# Builds the models; prints the path of the runtime's unit-test binary, which holds them.
build() {
    local log=$logs/build-models.log
    if ! CARGO_TARGET_DIR=$base_dir/models RUSTFLAGS="--cfg epitome_loom" \
        cargo test --release -p epitome-runtime --lib --no-run "${cargo_config[@]}" \
        >"$log" 2>&1; then
        echo "build of the models failed; see $log" >&2
        return 1
    fi
    sed -n 's|^ *Executable unittests src/lib\.rs (\(.*\))$|\1|p' "$log"
}

# The model files, one test run each.
model_files=$(ls "$root/runtime/src/loom_models" | sed -n 's/\.rs$//p' | grep -v '^mod$')

# --- The models -----------------------------------------------------------------------
echo "== building the models" >&2
if ! exe=$(build); then
    exit 1
fi

declare -A bound explored passed
model_order=()
for bin in $model_files; do
    log=$logs/run-$bin.log
    echo "== running $bin" >&2
    t0=$(date +%s)
    "$exe" "loom_models::$bin::" --nocapture --test-threads=2 >"$log" 2>&1
    status=$?
    echo "   $(($(date +%s) - t0)) s" >&2
    while read -r model b n; do
        model_order+=("$model")
        bound[$model]=$b
        explored[$model]=$n
        passed[$model]=yes
    done < <(sed -n 's/^.*loom-model \([^:]*\): bound \([^,]*\), \([0-9]*\) interleavings.*$/\1 \2 \3/p' "$log")
    if [[ $status -ne 0 ]]; then
        echo "   FAILED (see $log):" >&2
        grep -A1 "panicked at" "$log" | grep -v "panicked at\|^--" | sort -u | sed 's/^/     /' >&2
        failed=1
        # Models of this binary that printed no line failed.
        for m in "${mutants[@]}"; do
            IFS='|' read -r _ mbin _ mmodel <<<"$m"
            if [[ $mbin == "$bin" && -z "${passed[$mmodel]:-}" ]]; then
                model_order+=("$mmodel")
                bound[$mmodel]=?
                explored[$mmodel]=-
                passed[$mmodel]=NO
            fi
        done
    fi
done

# --- The mutants ----------------------------------------------------------------------
declare -A caught_by why
for m in "${mutants[@]}"; do
    IFS='|' read -r mutant bin test model <<<"$m"
    echo "== mutant $mutant: $bin::$test" >&2
    verdict=no
    log=$logs/mutant-$mutant.log
    # Bash's "Aborted" job report (loom aborts after a deadlock panic) goes to
    # /dev/null rather than the terminal; the log has the panic.
    status=$({
        EPITOME_LOOM_MUTANT=$mutant timeout 600 "$exe" --exact "loom_models::$bin::$test" \
            --nocapture >"$log" 2>&1
        echo $?
    } 2>/dev/null)
    if [[ $status -eq 124 ]]; then
        reason="timed out"
    elif [[ $status -eq 0 ]]; then
        reason="the model passed"
    elif grep -q "panicked at" "$log"; then
        verdict=yes
        reason=$(grep -A1 -m1 "panicked at" "$log" | tail -1 | cut -c1-90)
    else
        reason="exit $status without a panic"
    fi
    echo "   caught: $verdict ($reason)" >&2
    [[ $verdict == yes ]] || failed=1
    caught_by[$model]="${caught_by[$model]:+${caught_by[$model]}, }$mutant $([[ $verdict == yes ]] && echo ✓ || echo ✗)"
    why[$mutant]="$verdict|$model|$reason"
done

# --- The table ------------------------------------------------------------------------
elapsed=$(($(date +%s) - start))
{
    echo "| model | preemption bound | interleavings explored | passes | mutant caught |"
    echo "|---|---|---|---|---|"
    for model in "${model_order[@]}"; do
        b=${bound[$model]}
        [[ $b == none ]] && b="none (all)"
        echo "| \`$model\` | $b | ${explored[$model]} | ${passed[$model]} | ${caught_by[$model]:-} |"
    done
    echo
    echo "| mutant | model that must fail | caught | how it failed |"
    echo "|---|---|---|---|"
    for m in "${mutants[@]}"; do
        IFS='|' read -r mutant _ _ _ <<<"$m"
        IFS='|' read -r verdict model reason <<<"${why[$mutant]}"
        echo "| \`$mutant\` | \`$model\` | $verdict | ${reason//|/\\|} |"
    done
    echo
    echo "Wall time of run.sh: ${elapsed} s."
} >"$logs/table.md"

cat "$logs/table.md"

if $record; then
    {
        echo "# loom model results"
        echo
        echo "Produced by \`loom-tests/run.sh --record\` on $(date -u '+%Y-%m-%d %H:%M UTC')."
        echo
        echo "- Machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)," \
            "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), $(uname -sr)"
        echo "- Toolchain: $(rustc -V), loom $(sed -n 's/^name = "loom"$/&/p;/^name = "loom"$/{n;s/^version = "\(.*\)"$/\1/p}' Cargo.lock | tail -1)"
        echo "- Every model runs the runtime's own code under loom; \"none (all)\" means every"
        echo "  interleaving was explored (no preemption bound). Every mutant runs from the"
        echo "  models' build (EPITOME_LOOM_MUTANT selects it); the wall time below includes"
        echo "  that build."
        echo "- Real bugs found by these models, and fixed: see \"What the models found\" in"
        echo "  runtime/src/loom_models/mod.rs."
        echo
        cat "$logs/table.md"
    } >"$root/loom-tests/RESULTS.md"
    echo "wrote loom-tests/RESULTS.md" >&2
fi

if [[ $failed -ne 0 ]]; then
    echo "FAILED: a model failed or a mutant was not caught" >&2
    exit 1
fi
echo "all models pass; every mutant caught" >&2
