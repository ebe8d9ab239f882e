#!/usr/bin/env python3
"""Structure rules CI enforces: no import cycles between modules, no source file over 700 lines.

A module "uses" another when its code (comments and `#[cfg(test)] mod tests` excluded) names a
path into it: `crate::a::b`, `super::x`, `self::x`, or a bare `child::x` from a parent. A parent
that re-exports a child (`pub use child::X`) uses it; a child that reaches the parent's items
(`super::X` where X is not a module) uses the parent. Any strongly connected group of two or
more modules is a cycle. Test files (`tests.rs`, `tests/` folders) are exempt from the length rule.
"""
import os
import re
import sys

MAX_LINES = 700


def modules(root):
    mods = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            if f.endswith(".rs"):
                path = os.path.join(dirpath, f)
                rel = os.path.relpath(path, root)[:-3].split(os.sep)
                if rel[-1] in ("mod", "lib", "main"):
                    rel = rel[:-1]
                mods[tuple(rel)] = path
    return mods


def resolve(mods, path):
    for i in range(len(path), -1, -1):
        if tuple(path[:i]) in mods:
            return tuple(path[:i])
    return None


PATH = re.compile(
    r"\b(crate|super(?:::super)*|self)::((?:[A-Za-z_]\w*::)*)(\{[^;]*?\}|[A-Za-z_]\w*)"
)


def edges(mods):
    out = {}
    for mod, path in mods.items():
        src = open(path, encoding="utf-8").read()
        src = re.split(r"#\[cfg\(test\)\]\s*mod tests", src)[0]
        src = re.sub(r"//[^\n]*", "", src)
        here = list(mod)
        for m in PATH.finditer(src):
            head, prefix, last = m.groups()
            if last.startswith("{"):
                names = [x.strip().split("::")[0].split(" ")[0] for x in last.strip("{}").split(",")]
            else:
                names = [last]
            if head == "crate":
                base = []
            elif head == "self":
                base = here
            else:
                base = here[: len(here) - head.count("super")]
            for name in filter(None, names):
                target = resolve(mods, base + [p for p in (prefix + name).split("::") if p])
                if target is not None and target != mod:
                    out.setdefault(mod, set()).add(target)
        for child in (k for k in mods if len(k) == len(mod) + 1 and k[: len(mod)] == mod):
            if re.search(r"(?<![:\w])" + re.escape(child[-1]) + r"::", src):
                out.setdefault(mod, set()).add(child)
    return out


def cycles(graph, nodes):
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
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
                found.append(comp)

    sys.setrecursionlimit(10000)
    for v in nodes:
        if v not in index:
            visit(v)
    return found


def main(roots):
    failed = False
    for root in roots:
        mods = modules(root)
        for comp in cycles(edges(mods), list(mods)):
            names = sorted("::".join(m) or "<crate root>" for m in comp)
            print(f"error: import cycle in {root}: {' <-> '.join(names)}", file=sys.stderr)
            failed = True
        for path in mods.values():
            parts = path.split(os.sep)
            if os.path.basename(path) == "tests.rs" or "tests" in parts[1:]:
                continue
            n = sum(1 for _ in open(path, encoding="utf-8"))
            if n > MAX_LINES:
                print(f"error: {path} has {n} lines (at most {MAX_LINES})", file=sys.stderr)
                failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["src", "proto/src"]))
