#!/usr/bin/env python3
"""Import circles between a crate's modules, and the layers they stack into.

    scripts/layers.py runtime/src            the top-level modules of epitome-runtime
    scripts/layers.py benches/src/report     the files of one folder

A module imports another when its code (tests left out) names `crate::other`, or, in a
folder, `super::other` / `crate::...::folder::other`. Prints the layers from the bottom
up (each module imports only modules on lower layers) and exits 1 if modules import each
other in a circle, naming the modules and the lines that close it.
"""

import pathlib
import re
import sys

# Code after the first test-only item is left out: unit tests may import anything.
TEST_START = re.compile(r"^\s*#\[cfg\((all\()?test\b")


def code_of(path):
    lines = []
    for line in path.read_text().splitlines():
        if TEST_START.match(line):
            break
        lines.append(line)
    return lines


def modules(root):
    """Module name -> its files (a folder's files belong to the folder's module)."""
    mods = {}
    for path in sorted(root.iterdir()):
        if path.is_dir():
            mods[path.name] = sorted(path.rglob("*.rs"))
        elif path.suffix == ".rs" and path.stem not in ("lib", "main", "mod"):
            mods[path.stem] = [path]
    return mods


def edges(root, mods, folder_prefix):
    names = "|".join(re.escape(m) for m in mods)
    ref = re.compile(rf"\b(?:crate::{folder_prefix}|super::)({names})\b")
    group = re.compile(rf"\b(?:crate::{folder_prefix}|super::)\{{([^}}]*)\}}")
    found = {m: {} for m in mods}
    for mod, files in mods.items():
        for path in files:
            for n, line in enumerate(code_of(path), 1):
                if line.lstrip().startswith("//"):
                    continue
                targets = set(ref.findall(line))
                for inner in group.findall(line):
                    targets |= {t.strip().split("::")[0] for t in inner.split(",")}
                for t in targets:
                    if t in mods and t != mod:
                        found[mod].setdefault(t, f"{path}:{n}")
    return found


def circles(graph):
    """Tarjan's strongly connected components with more than one module."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def layers(graph):
    level = {}

    def depth(v, seen=()):
        if v not in level:
            below = [depth(w, seen + (v,)) for w in graph[v] if w not in seen]
            level[v] = 1 + max(below, default=-1)
        return level[v]

    for v in graph:
        depth(v)
    return level


def main():
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "runtime/src")
    # In a folder below src/, `crate::` paths name it in full.
    parts = root.parts[root.parts.index("src") + 1 :] if "src" in root.parts else ()
    prefix = "".join(f"{p}::" for p in parts)
    mods = modules(root)
    graph = edges(root, mods, re.escape(prefix))
    level = layers(graph)
    for n in range(max(level.values(), default=-1) + 1):
        print(f"layer {n}: " + ", ".join(sorted(m for m in level if level[m] == n)))
    found = circles(graph)
    for comp in found:
        print("circle: " + " <-> ".join(comp))
        for a in comp:
            for b in comp:
                if b in graph[a]:
                    print(f"  {a} -> {b}  ({graph[a][b]})")
    if not found:
        print(f"{root}: no import circle")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
