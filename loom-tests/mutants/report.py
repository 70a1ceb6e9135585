#!/usr/bin/env python3
"""Writes loom-tests/MUTANTS.md from the results of scripts/mutants.sh.

    report.py --cargo DIR --ops DIR --equivalent FILE --write FILE

- ``--cargo DIR``: cargo-mutants' output directory; each pass's ``mutants.out`` is kept
  as ``DIR/pass-N`` (pass 1: quick loom suite, 2: full loom suite, 3: the runtime's own
  tests), each pass testing only what the passes before did not kill.
- ``--ops DIR``: ``operators.py run``'s output directory (``outcomes.jsonl``).
- ``--equivalent FILE``: one mutant a line, ``NAME<TAB>reason``: a mutant that cannot
  change behaviour, and why. A missed mutant listed there counts as equivalent.

A mutant is *killed* if a pass fails on it (a test fails, or the suite times out: a
mutant that makes a model spin forever is caught, since CI would not finish). A file
is listed only if some mutant of it was tested: the report never counts a file that
was not run.
"""

import argparse
import collections
import datetime
import glob
import json
import os
import re
import subprocess
import sys


# The tool name of the rows of `unsafe fn`s' mutants (see --unsafe).
UNSAFE = "cargo-mutants, unsafe fns"

# Mutants of test code (helpers in a `mod tests`): not the code under test.
TEST_CODE = re.compile(r"\btests::")


def cargo_current(files):
    """The mutants cargo-mutants makes of `files` today: ident -> name (see `ident`), and
    the stable names several of them share."""
    if not files:
        return {}, set()
    args = ["cargo", "mutants", "-p", "epitome-runtime", "--list", "--json", "--exclude-re", "tests::"]
    for f in files:
        args += ["-f", f]
    root = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
    listed = json.loads(subprocess.run(args, cwd=root, check=True, stdout=subprocess.PIPE, text=True).stdout)
    counts = collections.Counter(stable(m["name"]) for m in listed)
    shared = {n for n, c in counts.items() if c > 1}
    return {ident(m, shared): m["name"] for m in listed}, shared


def ident(mutant, shared):
    """A mutant's identity across runs (``mutant``: cargo-mutants' record, with its name
    and function). Its stable name, unless several of today's mutants share that name
    (the same operator at the same column of two lines of one function: `x == A` on one
    line and `y == B` below it): then also its line, counted from its function's first
    line (from the file's start outside any function), so a result goes to the mutant it
    was measured on and no other. A result whose function changed above the mutant
    since its run no longer matches: that mutant counts as untested until run again."""
    name = mutant["name"]
    s = stable(name)
    if s not in shared:
        return s
    line = int(name.split(":")[1])
    fn = mutant.get("function")
    if fn:
        line -= fn["span"]["start"]["line"]
    return f"{s} @{line}"


def ops_generated(files):
    """file -> how many mutants operators.py makes of it."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import operators

    counts = collections.Counter()
    for m in operators.generate(files):
        counts[m.path] += 1
    return counts


def cargo_outcomes(d, shared):
    """ident -> (name, outcome, pass, file, how, passes seen) over cargo-mutants' runs
    (``pass-N-TIME``, in the order they ran); a kill or an unviable build is final, a
    later run's verdict replaces a miss (each run tests only what the runs before did
    not kill). ``shared``: the stable names several mutants share (see `ident`)."""
    out = {}
    runs = sorted(glob.glob(os.path.join(d, "pass-*", "outcomes.json")),
                  key=lambda p: int(os.path.basename(os.path.dirname(p)).split("-")[2]))
    for path in runs:
        p = int(os.path.basename(os.path.dirname(path)).split("-")[1])
        for o in json.load(open(path))["outcomes"]:
            sc = o["scenario"]
            if not isinstance(sc, dict) or "Mutant" not in sc:
                continue
            m = sc["Mutant"]
            if TEST_CODE.search(m["name"]):
                continue
            outcome = {
                "CaughtMutant": "killed",
                "MissedMutant": "missed",
                "Timeout": "killed",
                "Unviable": "unviable",
            }.get(o["summary"])
            if outcome is None:
                continue  # interrupted: not tested
            how = "timeout" if o["summary"] == "Timeout" else None
            # The same mutant in a later run may sit on another line (the file grew):
            # it is known by its column and description (and, where those are shared,
            # its line within its function).
            key = ident(m, shared)
            prev = out.get(key)
            if prev and prev[1] in ("killed", "unviable"):
                continue
            seen = (prev[5] if prev else frozenset()) | {p}
            out[key] = (m["name"], outcome, p, m["file"], how, seen)
    return out


def run_files(d):
    """The files cargo-mutants' runs in ``d`` measured."""
    files = set()
    for path in glob.glob(os.path.join(d, "pass-*", "outcomes.json")):
        for o in json.load(open(path))["outcomes"]:
            sc = o["scenario"]
            if isinstance(sc, dict) and "Mutant" in sc:
                files.add(sc["Mutant"]["file"])
    return sorted(files)


def ops_outcomes(d):
    """name -> (outcome, pass, file, how), for the mutants the operators make of the
    files today (a result for code that has changed since is dropped)."""
    out = {}
    path = os.path.join(d, "outcomes.jsonl")
    if not os.path.exists(path):
        return out
    records = [json.loads(line) for line in open(path)]
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import operators

    current = {m.key for m in operators.generate(sorted({r["file"] for r in records}))}
    phase_pass = {"quick": 1, "full": 2, "std": 3, "build": 0}
    for r in records:
        if r["key"] not in current:
            continue
        outcome = {"caught": "killed", "missed": "missed", "timeout": "killed",
                   "unviable": "unviable"}.get(r["outcome"], r["outcome"])
        how = "timeout" if r["outcome"] == "timeout" else None
        p = phase_pass.get(r["pass"], 0)
        # The runner takes a mutant through the passes in order, stopping at a kill; a
        # miss after the full loom suite means the std pass was skipped (--loom-only).
        seen = frozenset(range(1, p + 1))
        # One verdict a mutant, known by its key (the line moves when the file grows): a
        # kill is final, a later run's verdict replaces a miss.
        prev = out.get(r["key"])
        if prev and prev[1] in ("killed", "unviable"):
            continue
        out[r["key"]] = (r["name"], outcome, p, r["file"], how, seen)
    return {name: rest for name, *rest in out.values()}


def stable(name):
    """A mutant's name without its line (kept: file, column, description), so a result
    or a recorded reason survives lines moving above it; the column tells apart two
    mutants of one expression with the same description."""
    return re.sub(r"^(\S+?):\d+:(\d+):", r"\1:\2:", name)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cargo", required=True)
    ap.add_argument("--ops", required=True)
    ap.add_argument("--unsafe", help="the unsafe-fn run's directory (pass-N-TIME, selected.json)")
    ap.add_argument("--equivalent", required=True)
    ap.add_argument("--survivors", help="NAME<TAB>why it survives (not equivalent)")
    ap.add_argument("--write", required=True)
    ap.add_argument("files", nargs="*", help="every wakeup-path file, for the list of those not measured")
    args = ap.parse_args()

    current, shared = cargo_current(run_files(args.cargo))
    # A result for a mutant cargo-mutants no longer makes (the code changed) is dropped;
    # the others are shown under today's names (lines).
    cargo = {current[k]: r[1:] for k, r in cargo_outcomes(args.cargo, shared).items() if k in current}

    # The mutants of `unsafe fn`s, which cargo-mutants makes only of the copy of the tree
    # with `unsafe fn` made `fn` (scripts/mutants.sh unsafe): known from that run's list.
    unsafe = {}
    selected_path = os.path.join(args.unsafe, "selected.json") if args.unsafe else ""
    selected = json.load(open(selected_path)) if os.path.exists(selected_path) else []
    counts = collections.Counter(stable(m["name"]) for m in selected)
    shared_unsafe = {n for n, c in counts.items() if c > 1}
    current_unsafe = {ident(m, shared_unsafe): m["name"] for m in selected}
    if selected:
        unsafe = {current_unsafe[k]: r[1:] for k, r in cargo_outcomes(args.unsafe, shared_unsafe).items()
                  if k in current_unsafe}
    shared |= shared_unsafe

    def reason_key(name):
        # A reason names its mutant by stable name; by its exact name (today's line)
        # where several mutants share the stable one.
        return name if stable(name) in shared else stable(name)

    known = set(current.values()) | set(current_unsafe.values())

    def reasons(path):
        out = {}
        if path and os.path.exists(path):
            for line in open(path):
                line = line.rstrip("\n")
                if line and not line.startswith("#"):
                    name, _, reason = line.partition("\t")
                    name = name.strip()
                    if stable(name) in shared and name not in known:
                        print(f"{path}: {name}: its line moved; give today's", file=sys.stderr)
                    out[reason_key(name)] = reason.strip()
        return out

    equivalent = reasons(args.equivalent)
    why = reasons(args.survivors)
    all_passes = {1, 2, 3}
    rows = []
    for tool, res in (("cargo-mutants", cargo), (UNSAFE, unsafe), ("operators", ops_outcomes(args.ops))):
        for name, (outcome, p, f, how, seen) in res.items():
            if outcome == "missed" and reason_key(name) in equivalent:
                outcome = "equivalent"
            rows.append((f, tool, name, outcome, p, how, seen))

    ops_files = sorted({f for f, tool, *_ in rows if tool == "operators"})
    generated = {"cargo-mutants": collections.Counter(n.split(":")[0] for n in current.values()),
                 UNSAFE: collections.Counter(n.split(":")[0] for n in current_unsafe.values()),
                 "operators": ops_generated(ops_files)}
    per_file = collections.OrderedDict()
    for f, tool, name, outcome, p, how, seen in sorted(rows):
        c = per_file.setdefault((f, tool), collections.Counter())
        c["tested"] += 1
        c[outcome] += 1
        if outcome == "killed":
            c[f"pass{p}"] += 1
        if how == "timeout":
            c["timeout"] += 1
        if outcome == "missed" and set(seen) != all_passes:
            c["partly"] += 1

    for (f, tool), c in per_file.items():
        c["generated"] = generated[tool][f]
    total = collections.Counter()
    for c in per_file.values():
        total.update(c)

    def pct(c):
        live = c["killed"] + c["missed"]
        return f"{100.0 * c['killed'] / live:.1f}%" if live else "n/a"

    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Mutation testing of the wakeup paths",
        "",
        f"Written by `scripts/mutants.sh report` on {now}, from the results in",
        "`target/mutants/`. The method is in `docs/loom.md`; the sites are in",
        "`loom-tests/WAKEUPS.md`.",
        "",
        "Killed: a pass failed on the mutant (pass 1: the loom suite with every preemption",
        "bound capped at 2; pass 2: the loom suite as CI runs it; pass 3: the runtime's own",
        "unit and integration tests, normal build). A timeout counts as killed (the suite",
        "would not finish). Unviable: does not compile. Equivalent: cannot change behaviour",
        "(reason below). Score: killed / (killed + missed).",
        "",
        "Only the files below were measured. Every other file in `scripts/mutants.sh`'s list",
        "was not (see \"Not measured\" at the end).",
        "",
        "One row per file and tool (cargo-mutants, or our operators). Generated: every mutant",
        "the tool makes of the file; tested: those that ran. A row with tested < generated",
        "was measured in part; a file and tool without a row was not measured.",
        "cargo-mutants leaves `unsafe fn`s alone; their mutants (\"cargo-mutants, unsafe fns\")",
        "come from a copy of the tree with `unsafe fn` made `fn`, through pass 1 only.",
        "",
        "Missed: survived every pass it went through; \"of which not through all passes\": the",
        "later passes were not run on it (it may yet be killed; it counts as missed).",
        "",
        "| file | tool | generated | tested | unviable | killed (pass 1 / 2 / 3) | of which timeouts | equivalent | missed | of which not through all passes | score |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (f, tool), c in per_file.items():
        lines.append(
            f"| `{f}` | {tool} | {c['generated']} | {c['tested']} | {c['unviable']} | {c['killed']} ({c['pass1']} / {c['pass2']} / {c['pass3']}) "
            f"| {c['timeout']} | {c['equivalent']} | {c['missed']} | {c['partly']} | {pct(c)} |"
        )
    lines.append(
        f"| **all measured** | | {total['generated']} | {total['tested']} | {total['unviable']} | {total['killed']} "
        f"({total['pass1']} / {total['pass2']} / {total['pass3']}) | {total['timeout']} | {total['equivalent']} "
        f"| {total['missed']} | {total['partly']} | {pct(total)} |"
    )
    lines += ["", "## Equivalent mutants", ""]
    eq = [(f, n) for f, _, n, o, _, _, _ in sorted(rows) if o == "equivalent"]
    if not eq:
        lines.append("None.")
    for f, n in eq:
        lines.append(f"- `{n}`: {equivalent[reason_key(n)]}")
    lines += ["", "## Surviving mutants", ""]
    missed = [(f, t, n, seen) for f, t, n, o, _, _, seen in sorted(rows) if o == "missed"]
    if not missed:
        lines.append("None.")
    for f, t, n, seen in missed:
        reason = why.get(reason_key(n), "no reason recorded yet")
        passes = "passes " + ", ".join(str(p) for p in sorted(seen))
        if set(seen) != all_passes:
            passes += " (not " + ", ".join(str(p) for p in sorted(all_passes - set(seen))) + ")"
        lines.append(f"- `{n}` ({t}; {passes}): {reason}")
    lines += ["", "## Not measured", ""]
    unmeasured = [f for f in args.files if not any(pf == f for pf, _ in per_file)]
    if not unmeasured:
        lines.append("None.")
    for f in unmeasured:
        lines.append(f"- `{f}`")
    lines.append("")
    open(args.write, "w").write("\n".join(lines))
    print(f"{args.write}: {len(per_file)} file/tool rows, score {pct(total)}")


if __name__ == "__main__":
    main()
