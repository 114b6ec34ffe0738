#!/usr/bin/env python3
"""Import cycles between the module files of each crate.

A file that names `crate::a::b`, `super::x` or `self::x` (in a `use` or inline, braces expanded) depends on the
module file that defines the longest prefix of that path. A parent naming its own children is structure, not a
dependency, so those edges are dropped. Test code (`tests/` directories, `tests.rs`, `#[cfg(test)]` items) and
binaries (`bin/`) are left out: a test module may import anything.

Usage: module_cycles.py CRATE_SRC_DIR...
Prints each cycle (one strongly connected set of files per line) and ends with `cycles: N`; exits 1 if N > 0.
"""
import os
import re
import sys

IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def modules(src):
    """Module path (a tuple of names) -> file, for every non-test module file under `src`."""
    files = {}
    for root, _, names in os.walk(src):
        for name in names:
            if not name.endswith(".rs"):
                continue
            path = os.path.join(root, name)
            rel = os.path.relpath(path, src)[:-3].split(os.sep)
            if "tests" in rel or "bin" in rel:
                continue
            if rel[-1] in ("mod", "lib", "main"):
                rel = rel[:-1]
            files[tuple(rel)] = path
    return files


def strip_tests(text):
    """Drops every item under `#[cfg(test)]` (or `#[cfg(all(test, ...))]`): a block up to its closing brace, or
    an item up to its semicolon."""
    out, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        if re.match(r"\s*#\[cfg\((test|all\(test)", lines[i]):
            depth, started = 0, False
            while i < len(lines):
                depth += lines[i].count("{") - lines[i].count("}")
                started = started or "{" in lines[i]
                if started and depth <= 0:
                    break
                if not started and lines[i].rstrip().endswith(";"):
                    break
                i += 1
            i += 1
            continue
        out.append(lines[i])
        i += 1
    return "\n".join(out)


def strip_comments_and_strings(text):
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r"//[^\n]*", "", text)
    return re.sub(r'"(?:\\.|[^"\\])*"', '""', text)


def use_tree(text, pos):
    """Parses a path tree starting at `pos` (just after `crate::`, `super::` or `self::`): `a::b`, `a::{b, c::d}`,
    `a::*`, `a as x`. Returns the list of paths (lists of names) it names; a path stops at the first non-path token."""

    def skip_ws(p):
        while p < len(text) and text[p].isspace():
            p += 1
        return p

    def tree(p):
        p = skip_ws(p)
        if p < len(text) and text[p] == "{":
            paths, p = [], p + 1
            while True:
                p = skip_ws(p)
                if p >= len(text):
                    return paths, p
                if text[p] == "}":
                    return paths, p + 1
                if text[p] == ",":
                    p += 1
                    continue
                sub, q = tree(p)
                if q == p:
                    return paths, p
                paths += sub
                p = q
        m = IDENT.match(text, p)
        if not m:
            if p < len(text) and text[p] == "*":
                return [[]], p + 1
            return [[]], p
        name, p = m.group(0), m.end()
        q = skip_ws(p)
        if text.startswith("::", q):
            rest, p = tree(q + 2)
            return [[name] + r for r in rest], p
        if text.startswith("as", q) and IDENT.match(text, q).group(0) == "as":
            alias = IDENT.match(text, skip_ws(q + 2))
            p = alias.end() if alias else q + 2
        # `self` inside braces names the prefix itself.
        return ([[]] if name == "self" else [[name]]), p

    return tree(pos)[0]


def resolve(mods, path):
    for k in range(len(path), 0, -1):
        if tuple(path[:k]) in mods:
            return tuple(path[:k])
    return None


def edges(mods):
    graph = {m: set() for m in mods}
    for m, file in mods.items():
        with open(file, encoding="utf-8", errors="replace") as f:
            text = strip_comments_and_strings(strip_tests(f.read()))
        # The module `self::` starts from and `super::` goes up from (a `mod.rs` is its directory's module).
        here = list(m)
        for start in re.finditer(r"\b(crate|super|self)::", text):
            base = start.group(1)
            for segs in use_tree(text, start.end()):
                if base == "crate":
                    full = segs
                elif base == "self":
                    full = here + segs
                else:
                    full = here[:-1]
                    while segs and segs[0] == "super":
                        full, segs = full[:-1], segs[1:]
                    full = full + segs
                target = resolve(mods, full)
                if target is not None and target != m and target != ():
                    graph[m].add(target)
        # A parent naming its children is structure.
        graph[m] = {t for t in graph[m] if not (len(t) > len(m) and t[: len(m)] == m)}
    return graph


def strongly_connected(graph):
    index, low, stack, on_stack, found, counter = {}, {}, [], set(), [], [0]
    sys.setrecursionlimit(10000)

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(component)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def main(dirs):
    if not dirs:
        print(__doc__, file=sys.stderr)
        return 2
    total = 0
    for src in dirs:
        mods = modules(src)
        if not mods:
            print(f"{src}: no module files", file=sys.stderr)
            return 2
        for component in strongly_connected(edges(mods)):
            total += 1
            print(f"{src}: " + ", ".join("/".join(c) or "lib" for c in sorted(component)))
    print(f"cycles: {total}")
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
