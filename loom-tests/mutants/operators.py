#!/usr/bin/env python3
"""Mutation operators cargo-mutants lacks, for the wakeup paths, and their runner.

    operators.py list FILE...               print the mutants
    operators.py run --out DIR FILE...      test them; results in DIR/outcomes.jsonl
    operators.py run --out DIR --iterate .. test again only those not killed before
    operators.py show NAME                  print one mutant's diff

The operators (each mutant changes one place):

- ``ordering``: an atomic ``Ordering`` weakened one step: SeqCst to AcqRel (to Acquire
  for a load or a compare-exchange's failure ordering, to Release for a store), AcqRel
  to Acquire and to Release, Release and Acquire to Relaxed.
- ``cas-store``: a ``compare_exchange`` / ``compare_exchange_weak`` replaced by an
  unconditional store of its new value, reporting success.
- ``swap-store``: a ``swap`` replaced by a load and a separate store.
- ``fetch-load-store``: a ``fetch_*`` replaced by a load and a separate store.
- ``no-recheck``: a re-check after a registration removed (a curated list, below: a
  registration's second look at the state it registered against).
- ``no-wake``: a wake removed: a waker's ``wake`` / ``wake_by_ref``, a condition
  variable's notify, an unpark, the eventpoll's notify, a hand-on hook, a task's
  schedule, or a waker collected for waking dropped instead.

Mutants are tested as scripts/mutants.sh tests cargo-mutants' mutants: the quick loom
suite, then the full loom suite, then the runtime's own tests, each pass only for the
survivors of the passes before. Code in test modules, comments and the ``bug:`` arm of
a ``planted_bug!`` (compiled out outside its mutant build) is never mutated.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

# --------------------------------------------------------------------------------------
# Reading the source


def code_mask(text):
    """For each character, whether it is code (not a comment, string or char literal),
    and whether it lies in a test module or a planted bug's `bug:` arm."""
    n = len(text)
    code = [True] * n
    i = 0
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            for k in range(i, j):
                code[k] = False
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            for k in range(i, j):
                code[k] = False
            i = j
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            for k in range(i, min(j + 1, n)):
                code[k] = False
            i = j + 1
        elif c == "'" and i + 2 < n and (text[i + 2] == "'" or text[i + 1] == "\\"):
            # A char literal ('x' or '\n'); lifetimes ('a) are left alone.
            j = text.find("'", i + 2)
            for k in range(i, j + 1):
                code[k] = False
            i = j + 1
        else:
            i += 1
    # Test modules: from `mod tests` (after a cfg(test) attribute) to the end of file.
    m = re.search(r"#\[cfg\([^\]]*test[^\]]*\)\]\s*mod tests\b", text)
    if m:
        for k in range(m.start(), n):
            code[k] = False
    # The `bug:` arm of each planted_bug!: from `bug:` to its `code:`.
    for m in re.finditer(r"\bbug:", text):
        j = text.find("code:", m.end())
        if j < 0:
            continue
        for k in range(m.start(), j):
            code[k] = False
    return code


def line_col(text, pos):
    line = text.count("\n", 0, pos) + 1
    col = pos - (text.rfind("\n", 0, pos) + 1) + 1
    return line, col


def line_text(text, pos):
    a = text.rfind("\n", 0, pos) + 1
    b = text.find("\n", pos)
    return text[a : (len(text) if b < 0 else b)].strip()


FN_RE = re.compile(r"^\s*(?:pub(?:\([^)]*\))?\s+)?(?:const\s+)?(?:async\s+)?(?:unsafe\s+)?fn\s+(\w+)", re.M)


def enclosing_fn(text, pos):
    name = None
    for m in FN_RE.finditer(text, 0, pos):
        name = m.group(1)
    return name or "?"


def skip_ws_back(text, i):
    while i >= 0 and text[i].isspace():
        i -= 1
    return i


def receiver_start(text, dot):
    """The start of the receiver expression of the method call whose `.` is at `dot`:
    a chain of identifiers, `.field`, `.method(..)`, `[..]` and `(..)` groups."""
    i = skip_ws_back(text, dot - 1)
    start = i + 1
    while i >= 0:
        if text[i] in ")]":
            close, open_ = text[i], "(" if text[i] == ")" else "["
            depth = 0
            while i >= 0:
                if text[i] == close:
                    depth += 1
                elif text[i] == open_:
                    depth -= 1
                    if depth == 0:
                        break
                i -= 1
            i -= 1
            # A call: the callee's name comes before the group.
            while i >= 0 and (text[i].isalnum() or text[i] == "_"):
                i -= 1
            start = i + 1
        elif text[i].isalnum() or text[i] == "_":
            while i >= 0 and (text[i].isalnum() or text[i] == "_"):
                i -= 1
            start = i + 1
        else:
            break
        j = skip_ws_back(text, i)
        # rustfmt starts a continued chain's line with its `.`: a `.` ending the line
        # before is not part of this receiver (it ends a comment's sentence).
        if j >= 0 and text[j] == "." and "\n" not in text[j:i + 1]:
            i = skip_ws_back(text, j - 1)
            continue
        break
    return start


def call_end(text, open_paren):
    """The index just past the `)` matching the `(` at `open_paren`."""
    depth = 0
    i = open_paren
    while i < len(text):
        if text[i] == "(":
            depth += 1
        elif text[i] == ")":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    raise ValueError("unbalanced call")


def split_args(s):
    """Splits a call's argument list at top-level commas."""
    args, depth, cur = [], 0, ""
    for c in s:
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        if c == "," and depth == 0:
            args.append(cur.strip())
            cur = ""
        else:
            cur += c
    if cur.strip():
        args.append(cur.strip())
    return args


def innermost_call(text, pos):
    """The name of the innermost call or macro whose parentheses enclose `pos`, and the
    index of the argument `pos` is in."""
    depth = 0
    commas = 0
    i = pos - 1
    while i >= 0:
        c = text[i]
        if c in ")]}":
            depth += 1
        elif c in "([{":
            if depth == 0:
                if c != "(":
                    return None, 0
                j = skip_ws_back(text, i - 1)
                k = j
                while k >= 0 and (text[k].isalnum() or text[k] in "_!"):
                    k -= 1
                return text[k + 1 : j + 1], commas
            depth -= 1
        elif c == "," and depth == 0:
            commas += 1
        i -= 1
    return None, 0


# --------------------------------------------------------------------------------------
# The operators

RMW = ("swap", "fetch_add", "fetch_sub", "fetch_or", "fetch_and", "fetch_xor", "fetch_update")
LOAD_OF = {"SeqCst": "SeqCst", "AcqRel": "Acquire", "Acquire": "Acquire", "Release": "Relaxed", "Relaxed": "Relaxed"}
STORE_OF = {"SeqCst": "SeqCst", "AcqRel": "Release", "Release": "Release", "Acquire": "Relaxed", "Relaxed": "Relaxed"}


def weaker(kind, order):
    """The orderings one step weaker than `order` that are legal for `kind`."""
    if kind in ("load", "cas-failure"):
        return {"SeqCst": ["Acquire"], "Acquire": ["Relaxed"]}.get(order, [])
    if kind == "store":
        return {"SeqCst": ["Release"], "Release": ["Relaxed"]}.get(order, [])
    return {
        "SeqCst": ["AcqRel"],
        "AcqRel": ["Acquire", "Release"],
        "Release": ["Relaxed"],
        "Acquire": ["Relaxed"],
    }.get(order, [])


class Mutant:
    def __init__(self, path, text, start, end, replacement, op, description):
        self.path = path
        self.start = start
        self.end = end
        self.replacement = replacement
        self.op = op
        line, col = line_col(text, start)
        self.line, self.col = line, col
        self.function = enclosing_fn(text, start)
        self.description = f"{description} in {self.function}"
        self.name = f"{path}:{line}:{col}: [{op}] {self.description}"
        self.key = f"{path}: [{op}] {self.description} @ {line_text(text, start)}"

    def apply(self, text):
        return text[: self.start] + self.replacement + text[self.end :]


def ordering_mutants(path, text, code):
    out = []
    for m in re.finditer(r"Ordering::(SeqCst|AcqRel|Release|Acquire)\b", text):
        if not code[m.start()]:
            continue
        order = m.group(1)
        call, arg = innermost_call(text, m.start())
        name = (call or "").split(".")[-1]
        if name in ("load",):
            kind = "load"
        elif name == "store":
            kind = "store"
        elif name in ("compare_exchange", "compare_exchange_weak"):
            kind = "cas-failure" if arg == 3 else "rmw"
        elif name == "fence":
            kind = "fence"
        else:
            kind = "rmw"
        for w in weaker(kind, order):
            out.append(
                Mutant(path, text, m.start(), m.end(), f"Ordering::{w}", "ordering",
                       f"weaken Ordering::{order} to {w} ({kind}{' ' + name if name else ''})")
            )
    return out


def method_calls(text, code, names):
    """(receiver start, dot, name, open paren, end, args) of every call of a method in
    `names`."""
    pat = re.compile(r"\.\s*(" + "|".join(names) + r")\s*\(")
    for m in pat.finditer(text):
        if not code[m.start()]:
            continue
        dot = m.start()
        open_paren = m.end() - 1
        end = call_end(text, open_paren)
        recv = receiver_start(text, dot)
        args = split_args(text[open_paren + 1 : end - 1])
        yield recv, dot, m.group(1), open_paren, end, args


def ordering_name(arg):
    m = re.search(r"(SeqCst|AcqRel|Release|Acquire|Relaxed)\s*$", arg)
    return m.group(1) if m else None


def cas_mutants(path, text, code):
    out = []
    for recv, dot, name, _, end, args in method_calls(text, code, ["compare_exchange_weak", "compare_exchange"]):
        if len(args) != 4:
            continue
        r = text[recv:dot].strip()
        order = ordering_name(args[2])
        if r == "" or order is None:
            continue
        so = STORE_OF[order]
        repl = (f"({{ {r}.store({args[1]}, Ordering::{so}); "
                f"if true {{ Ok({args[0]}) }} else {{ Err({args[0]}) }} }})")
        out.append(Mutant(path, text, recv, end, repl, "cas-store",
                          f"replace {name} by an unconditional store of its new value"))
    return out


def swap_mutants(path, text, code):
    out = []
    for recv, dot, name, _, end, args in method_calls(text, code, ["swap"]):
        if len(args) != 2:
            continue
        order = ordering_name(args[1])
        r = text[recv:dot].strip()
        if order is None or r == "":
            continue
        repl = (f"({{ let __old = {r}.load(Ordering::{LOAD_OF[order]}); "
                f"{r}.store({args[0]}, Ordering::{STORE_OF[order]}); __old }})")
        out.append(Mutant(path, text, recv, end, repl, "swap-store", "replace swap by a load and a store"))
    return out


FETCH_EXPR = {
    "fetch_add": "__old.wrapping_add({v})",
    "fetch_sub": "__old.wrapping_sub({v})",
    "fetch_or": "__old | ({v})",
    "fetch_and": "__old & ({v})",
    "fetch_xor": "__old ^ ({v})",
}


def fetch_mutants(path, text, code):
    out = []
    for recv, dot, name, _, end, args in method_calls(text, code, list(FETCH_EXPR)):
        if len(args) != 2:
            continue
        order = ordering_name(args[1])
        r = text[recv:dot].strip()
        if r == "":
            continue
        # An ordering passed in a variable (`order`): keep it for the store, and load
        # with Acquire (what the code's own choice, AcqRel, reads with).
        lo = f"Ordering::{LOAD_OF[order]}" if order else "Ordering::Acquire"
        so = f"Ordering::{STORE_OF[order]}" if order else args[1]
        new = FETCH_EXPR[name].format(v=args[0])
        repl = f"({{ let __old = {r}.load({lo}); {r}.store({new}, {so}); __old }})"
        out.append(Mutant(path, text, recv, end, repl, "fetch-load-store", f"replace {name} by a load and a store"))
    return out


# Calls whose removal loses a wakeup. The receiver is kept alive (`let _ = &recv;`) so
# the mutant compiles whatever it is.
WAKE_METHODS = ["wake", "wake_by_ref", "notify_one", "notify_all", "unpark", "notify", "hand_on",
                "repost", "hand_event", "pass_baton_if_ready", "schedule"]


def wake_mutants(path, text, code):
    out = []
    for recv, dot, name, _, end, args in method_calls(text, code, WAKE_METHODS):
        r = text[recv:dot].strip()
        if r == "":
            continue
        # `fn wake(` definitions are not calls: the receiver would be `fn`.
        before = text[max(0, recv - 3):recv]
        if before.endswith("fn "):
            continue
        if name == "schedule" and len(args) != 1:
            continue
        # `Waiters::notify(node)` takes a node off the list; the eventpoll's notify
        # (no argument) is the wakeup.
        if name == "notify" and args:
            continue
        if name in ("hand_event", "pass_baton_if_ready", "schedule"):
            arg_keep = "".join(f" let _ = {a};" for a in args)
        else:
            arg_keep = ""
        repl = f"{{ let _ = &{r};{arg_keep} }}"
        out.append(Mutant(path, text, recv, end, repl, "no-wake", f"remove the call {name}()"))
    # `for_each(Waker::wake)`: the wakers are dropped instead.
    for m in re.finditer(r"for_each\((?:std::task::)?Waker::wake\)", text):
        if code[m.start()]:
            out.append(Mutant(path, text, m.start(), m.end(), "for_each(drop)", "no-wake",
                              "drop the collected wakers instead of waking them"))
    # A waker collected for waking (`wake.push(w)` and the like) dropped instead.
    for recv, dot, name, _, end, args in method_calls(text, code, ["push", "extend", "append"]):
        r = text[recv:dot].strip()
        if r not in ("wake", "wakers") or len(args) != 1:
            continue
        if name == "append":
            repl = f"{{ let _ = {args[0]}; }}"
        else:
            repl = f"drop({args[0]})"
        out.append(Mutant(path, text, recv, end, repl, "no-wake", f"drop instead of {r}.{name}(..)"))
    # A task's hook or vtable schedule: `hook()`, `(header.vtable.schedule)(ptr)`.
    for m in re.finditer(r"\bhook\(\)", text):
        if code[m.start()] and not text[max(0, m.start() - 3):m.start()].endswith("fn "):
            out.append(Mutant(path, text, m.start(), m.end(), "{ let _ = &hook; }", "no-wake",
                              "remove the hand-on hook's call"))
    for m in re.finditer(r"\(header\.vtable\.schedule\)\(ptr\)", text):
        if code[m.start()]:
            out.append(Mutant(path, text, m.start(), m.end(), "{ let _ = ptr; }", "no-wake",
                              "remove the scheduling of a woken task"))
    return out


# Re-checks after a registration: (file, exact text, replacement, what it removes). The
# text must occur exactly once in the file.
RECHECKS = [
    ("runtime/src/reactor/scheduled_io.rs",
     "code: is_ready(cur) && !even_if_ready,",
     "code: false,",
     "publish the slot's waker without looking at readiness again"),
    ("runtime/src/reactor/scheduled_io.rs",
     "        let cur = self.set_list(dir);\n        if is_ready(cur) {",
     "        let cur = self.set_list(dir);\n        if false {",
     "keep a second waker in the list without looking at the word LIST was set in"),
    ("runtime/src/reactor/scheduled_io.rs",
     "if is_ready(now) && now & bits::LIST == 0 {",
     "if false {",
     "leave a linked node waiting without looking at the word LIST was set in"),
    ("runtime/src/reactor/scheduled_io.rs",
     "            if is_ready(cur) && !even_if_ready {\n                return Some(self.event(dir, cur));",
     "            if false {\n                return Some(self.event(dir, cur));",
     "register in the slot without looking at readiness in the word it claims"),
    ("runtime/src/reactor/registration.rs",
     "None if done & needs(dir) == needs(dir) => Poll::Pending,",
     "None => Poll::Pending,",
     "return Pending without first registering (or adding writes to) the fd the waker waits on"),
    ("runtime/src/scheduler/park.rs",
     "        if !self.state.try_park() {\n            return false;\n        }",
     "        let _ = self.state.try_park();",
     "sleep even when a notify came before the park"),
    ("runtime/src/task_core/cell.rs",
     "            Ok(_) => return,\n            Err(s) => snapshot = s,",
     "            Ok(_) => return,\n            Err(_) => return,",
     "after a join waker's registration finds the task complete, return Pending"),
    ("runtime/src/time/driver.rs",
     "        if earlier {\n            self.unpark.unpark();\n        }\n        key",
     "        let _ = earlier;\n        key",
     "register an earlier timer without making the owner look at its wheel again"),
    ("runtime/src/io/wait.rs",
     "for attempt in 0..2 {",
     "for attempt in 0..1 {",
     "park a waker for urgent data or an error without looking at the word again"),
    ("runtime/src/io/shared.rs",
     "                    if waiting {\n                        return Poll::Pending;\n                    }",
     "                    if true {\n                        self.inner.add_poller(cx.waker());\n                        return Poll::Pending;\n                    }",
     "keep a poller's waker without trying the operation again"),
    ("runtime/src/scheduler/worker.rs",
     "            if self.local.take_remote() {\n                return;\n            }",
     "            let _ = self.local.take_remote();",
     "park after taking remote work without running it"),
    ("runtime/src/eventpoll/ep_poll.rs",
     "            if checked_in || guard.blocked.is_empty() {",
     "            if true {",
     "give up a timed-out wait without awaiting the check-in of a thread back from the kernel"),
    ("runtime/src/scheduler/local_set.rs",
     "        if !self.is_polling() {\n            self.wake();\n        }",
     "        if false {\n            self.wake();\n        }",
     "queue a woken task of a set without waking the set's poller"),
    ("runtime/src/blocking/mod.rs",
     "            if let Some(task) = state.queue.pop_front() {",
     "            if let Some(task) = None::<Notified> {",
     "sleep without looking at the queue"),
]


def recheck_mutants(path, text, code):
    out = []
    for f, old, new, what in RECHECKS:
        if f != path:
            continue
        i = text.find(old)
        if i < 0 or text.find(old, i + 1) >= 0:
            print(f"warning: re-check site not found once in {path}: {old!r}", file=sys.stderr)
            continue
        out.append(Mutant(path, text, i, i + len(old), new, "no-recheck", what))
    return out


OPERATORS = [ordering_mutants, cas_mutants, swap_mutants, fetch_mutants, recheck_mutants, wake_mutants]


def generate(files):
    mutants = []
    for path in files:
        text = open(os.path.join(ROOT, path)).read()
        code = code_mask(text)
        for op in OPERATORS:
            mutants.extend(op(path, text, code))
    mutants.sort(key=lambda m: (m.path, m.start, m.op, m.replacement))
    return mutants


# --------------------------------------------------------------------------------------
# Running them

LOOM_ENV = {
    "RUSTFLAGS": "--cfg epitome_loom",
    "CARGO_PROFILE_RELEASE_DEBUG": "false",
    "CARGO_PROFILE_RELEASE_DEBUG_ASSERTIONS": "true",
    "CARGO_PROFILE_RELEASE_OVERFLOW_CHECKS": "true",
    # As scripts/mutants.sh: optimised at level 1 (builds in half the time, same checks)
    # and incremental (a mutant changes one function: seconds, not tens, per build).
    "CARGO_PROFILE_RELEASE_OPT_LEVEL": "1",
    "CARGO_PROFILE_RELEASE_INCREMENTAL": "true",
    "RUST_BACKTRACE": "0",
}


def run(cmd, env, cwd, timeout, log):
    """Runs `cmd`; returns (status, output) with status None on timeout."""
    t0 = time.time()
    try:
        p = subprocess.run(cmd, env=env, cwd=cwd, timeout=timeout, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, errors="replace",
                           start_new_session=True)
        status, output = p.returncode, p.stdout
    except subprocess.TimeoutExpired as e:
        status = None
        output = (e.stdout or b"").decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
    log.write(f"*** {' '.join(cmd)} ({time.time() - t0:.1f} s, status {status})\n{output}\n")
    return status, output


def failed_tests(output):
    """The tests (models) that failed, as `file::test` under loom_models."""
    names = re.findall(r"^test (?:loom_models::)?(\S+) \.\.\. FAILED$", output, re.M)
    names += re.findall(r"^thread '(?:loom_models::)?([^']+)' \(\d+\) panicked", output, re.M)
    return sorted(set(names))


def first_failure(output):
    m = re.search(r"panicked at [^\n]*\n([^\n]*)", output)
    if m:
        return m.group(1)[:160]
    m = re.search(r"(deadlock[^\n]*)", output)
    return m.group(1)[:160] if m else ""


def copy_tree(dest):
    """A copy of the workspace's sources (tracked and untracked, not ignored)."""
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                           cwd=ROOT, check=True, stdout=subprocess.PIPE).stdout.split(b"\0")
    if os.path.exists(dest):
        shutil.rmtree(dest)
    for f in files:
        if not f:
            continue
        f = f.decode()
        src = os.path.join(ROOT, f)
        if not os.path.isfile(src):
            continue
        d = os.path.join(dest, f)
        os.makedirs(os.path.dirname(d), exist_ok=True)
        shutil.copy2(src, d)


def test_binary(output):
    for line in output.splitlines():
        m = re.search(r"Executable unittests src/lib\.rs \((.*)\)", line)
        if m:
            return m.group(1)
    return None


def run_mutants(args):
    files = args.files
    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    tree = os.path.join(out, "tree")
    outcomes_path = os.path.join(out, "outcomes.jsonl")
    previous = {}
    if os.path.exists(outcomes_path):
        for line in open(outcomes_path):
            r = json.loads(line)
            previous[r["key"]] = r
    mutants = generate(files)
    if args.re:
        mutants = [m for m in mutants if re.search(args.re, m.name)]
    if args.iterate:
        # Equivalent mutants (loom-tests/mutants/equivalent.txt) are not tested again.
        equivalent = set()
        eq_path = os.path.join(ROOT, "loom-tests", "mutants", "equivalent.txt")
        if os.path.exists(eq_path):
            for line in open(eq_path):
                if line.strip() and not line.startswith("#"):
                    equivalent.add(re.sub(r"^(\S+?):\d+:\d+:", r"\1:", line.split("\t")[0].strip()))
        todo = [m for m in mutants
                if previous.get(m.key, {}).get("outcome") not in ("caught", "unviable")
                and re.sub(r"^(\S+?):\d+:\d+:", r"\1:", m.name) not in equivalent]
    else:
        todo = mutants
        previous = {}
    # Results of mutants not run this time are kept.
    results = {k: v for k, v in previous.items()}
    copy_tree(tree)
    log = open(os.path.join(out, "log.txt"), "a")
    env_loom = dict(os.environ, CARGO_INCREMENTAL="1", CARGO_TARGET_DIR=os.path.join(out, "target-loom"), **LOOM_ENV)
    env_std = {k: v for k, v in os.environ.items() if k != "RUSTFLAGS"}
    env_std.update(CARGO_INCREMENTAL="1", CARGO_TARGET_DIR=os.path.join(out, "target-std"))
    build_loom = ["cargo", "test", "--release", "-p", "epitome-runtime", "--lib", "--no-run"]
    test_std = ["cargo", "test", "-p", "epitome-runtime", "--lib", "--tests"]

    # The unmutated tree must pass every pass (unless --no-baseline: a run resumed on
    # a tree whose suite was just seen to pass).
    print(f"== baseline ({len(todo)} mutants to test)", file=sys.stderr)
    st, o = run(build_loom, env_loom, tree, 1800, log)
    exe = test_binary(o)
    if st != 0 or exe is None:
        sys.exit("baseline loom build failed; see " + log.name)
    for quick in (True, False) if not args.no_baseline else ():
        env = dict(env_loom, EPITOME_LOOM_QUICK="1") if quick else env_loom
        st, o = run([exe, "--test-threads=2"], env, tree, 1800, log)
        if st != 0:
            sys.exit("baseline loom suite failed; see " + log.name)
    if not args.loom_only and not args.no_baseline:
        st, o = run(test_std, env_std, tree, 3600, log)
        if st != 0:
            sys.exit("baseline std tests failed; see " + log.name)

    def write_all():
        with open(outcomes_path + ".tmp", "w") as f:
            for r in results.values():
                f.write(json.dumps(r) + "\n")
        os.replace(outcomes_path + ".tmp", outcomes_path)

    for n, m in enumerate(todo, 1):
        path = os.path.join(tree, m.path)
        original = open(path).read()
        t0 = time.time()
        log.write(f"\n===== {m.name}\n")
        try:
            open(path, "w").write(m.apply(original))
            outcome, phase, detail, killed_by = test_one(m, exe_path=None, env_loom=env_loom, env_std=env_std,
                                              tree=tree, build_loom=build_loom, test_std=test_std,
                                              log=log, loom_only=args.loom_only)
        finally:
            open(path, "w").write(original)
        results[m.key] = {
            "key": m.key, "name": m.name, "file": m.path, "line": m.line, "op": m.op,
            "description": m.description, "outcome": outcome, "pass": phase, "detail": detail, "killed_by": killed_by,
        }
        write_all()
        print(f"{outcome:9} {phase:6} {time.time() - t0:5.0f} s  [{n}/{len(todo)}] {m.name}", file=sys.stderr)
        log.flush()
    # Restore the unmutated build, so the next run starts from it.
    run(build_loom, env_loom, tree, 1800, log)


def test_one(m, exe_path, env_loom, env_std, tree, build_loom, test_std, log, loom_only):
    st, o = run(build_loom, env_loom, tree, 900, log)
    if st is None:
        return "timeout", "build", "build timed out", []
    exe = test_binary(o)
    if st != 0 or exe is None:
        return "unviable", "build", "", []
    for phase, env, timeout in (("quick", dict(env_loom, EPITOME_LOOM_QUICK="1"), 120),
                                ("full", env_loom, 600)):
        st, o = run([exe, "--test-threads=2"], env, tree, timeout, log)
        if st is None:
            return "timeout", phase, "the suite did not finish", failed_tests(o)
        if st != 0:
            return "caught", phase, first_failure(o), failed_tests(o)
    if loom_only:
        return "missed", "full", "", []
    st, o = run(test_std, env_std, tree, 1200, log)
    if st is None:
        return "timeout", "std", "the tests did not finish", []
    if st != 0:
        if "error[E" in o and "test result" not in o:
            # Compiles under loom but not in the std build: the std tests cannot run it.
            return "unviable", "std", "does not build in the std configuration", []
        return "caught", "std", first_failure(o), failed_tests(o)
    return "missed", "std", "", []


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    lp = sub.add_parser("list")
    lp.add_argument("files", nargs="+")
    lp.add_argument("--keys", action="store_true")
    sp = sub.add_parser("show")
    sp.add_argument("name")
    sp.add_argument("files", nargs="+")
    rp = sub.add_parser("run")
    rp.add_argument("--out", required=True)
    rp.add_argument("--iterate", action="store_true", help="skip mutants killed before")
    rp.add_argument("--re", help="only mutants whose name matches")
    rp.add_argument("--loom-only", action="store_true", help="skip the std pass")
    rp.add_argument("--no-baseline", action="store_true", help="skip the unmutated runs")
    rp.add_argument("files", nargs="+")
    args = ap.parse_args()
    if args.cmd == "list":
        for m in generate(args.files):
            print(m.key if args.keys else m.name)
    elif args.cmd == "show":
        for m in generate(args.files):
            if args.name in m.name:
                text = open(os.path.join(ROOT, m.path)).read()
                print(m.name)
                print("-", text[m.start:m.end])
                print("+", m.replacement)
    else:
        run_mutants(args)


if __name__ == "__main__":
    main()
