#!/usr/bin/env python3
"""The workspace's structure: each crate's job (its Cargo description),
lines of Rust, the crates it depends on, and the import circles between
its modules (files that reach each other through `crate::`/`super::` paths,
directly or around a loop).

    python3 scripts/structure.py            # every crate
    python3 scripts/structure.py --circles  # only the circles (exit 1 if any)

A module here is a file; `mod.rs` stands for its directory. A reference is
any `crate::a::b` or `super::x` path in the file's code (comments and
strings stripped), resolved to the longest module path that exists.
"""

import os
import re
import sys
import tomllib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def crates():
    with open(os.path.join(ROOT, "Cargo.toml"), "rb") as f:
        ws = tomllib.load(f)
    found = [ROOT]
    for pattern in ws["workspace"]["members"]:
        base = os.path.join(ROOT, pattern.rstrip("*").rstrip("/"))
        if pattern.endswith("*"):
            found += sorted(os.path.join(base, d) for d in os.listdir(base)
                            if os.path.exists(os.path.join(base, d, "Cargo.toml")))
        else:
            found.append(base)
    return found


def strip(code):
    """The code with comments, strings and char literals blanked."""
    out, i, n = [], 0, len(code)
    while i < n:
        c = code[i]
        if code.startswith("//", i):
            while i < n and code[i] != "\n":
                i += 1
        elif code.startswith("/*", i):
            depth = 0
            while i < n:
                if code.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif code.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                    if depth == 0:
                        break
                else:
                    i += 1
        elif c == "r" and re.match(r'r#*"', code[i:]) and not (i and (code[i - 1].isalnum() or code[i - 1] == "_")):
            hashes = re.match(r"r(#*)\"", code[i:]).group(1)
            end = code.find('"' + hashes, i + 2 + len(hashes))
            i = n if end < 0 else end + 1 + len(hashes)
            out.append('""')
        elif c == '"':
            i += 1
            while i < n and code[i] != '"':
                i += 2 if code[i] == "\\" else 1
            i += 1
            out.append('""')
        elif c == "'" and re.match(r"'(\\.[^']*|[^\\'])'", code[i:]):
            i += len(re.match(r"'(\\.[^']*|[^\\'])'", code[i:]).group(0))
            out.append("' '")
        else:
            out.append(c)
            i += 1
    return "".join(out)


def modules(src):
    """{module path tuple: file} for the crate rooted at src (lib.rs or main.rs)."""
    mods = {}
    for dirpath, _, files in os.walk(src):
        for name in files:
            if not name.endswith(".rs"):
                continue
            rel = os.path.relpath(os.path.join(dirpath, name), src)
            parts = rel[:-3].split(os.sep)
            if parts[-1] == "mod":
                parts = parts[:-1]
            if parts in (["lib"], ["main"]):
                parts = []
            mods[tuple(parts)] = os.path.join(dirpath, name)
    return mods


def edges(mods):
    out = {m: set() for m in mods}
    for m, path in mods.items():
        with open(path) as f:
            code = strip(f.read())
        refs = [tuple(r.split("::")) for r in re.findall(r"\bcrate((?:::\w+)+)", code)]
        refs = [r[1:] for r in refs]
        for sup in re.findall(r"\bsuper((?:::\w+)+)", code):
            parent = m[:-1] if os.path.basename(path) != "mod.rs" else m[:-1]
            refs.append(parent + tuple(sup.split("::")[1:]))
        for r in refs:
            for n in range(len(r), 0, -1):
                target = r[:n]
                if target in mods:
                    if target != m and target != ():
                        out[m].add(target)
                    break
    return out


def circles(graph):
    index, low, stack, on, sccs = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
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
                sccs.append(sorted(comp))

    sys.setrecursionlimit(10_000)
    for v in graph:
        if v not in index:
            visit(v)
    return sccs


def main():
    only_circles = "--circles" in sys.argv
    any_circle = False
    for crate in crates():
        with open(os.path.join(crate, "Cargo.toml"), "rb") as f:
            manifest = tomllib.load(f)
        name = manifest["package"]["name"]
        src = os.path.join(crate, "src")
        mods = modules(src)
        lines = sum(sum(1 for _ in open(p)) for p in mods.values())
        deps = sorted(d for d in manifest.get("dependencies", {}) if d.startswith("chronus"))
        found = circles(edges(mods))
        any_circle |= bool(found)
        if not only_circles:
            print(f"{name:<20} {lines:>6} lines  {manifest['package'].get('description', '')}")
            print(f"{'':<20} depends on: {', '.join(deps) or '-'}")
        for c in found:
            print(f"{'':<20} circle: {' <-> '.join('::'.join(m) or 'lib' for m in c)}")
    sys.exit(1 if only_circles and any_circle else 0)


main()
