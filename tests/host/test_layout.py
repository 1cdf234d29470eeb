"""The host's floors: feed < card (with the gateware, hw/) < trading < command line.

Walks every ``import`` of ``host/`` and ``hw/`` with :mod:`ast` (function-local imports
included: a lazy import is still a dependency) and fails when a module imports one of a floor
above its own, when the gateware imports anything of the host but the feed floor, or when the
import graph has a cycle. ``from pkg import name`` counts as an import of ``pkg.name`` when that
is a module, else of ``pkg``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

FLOORS = (  # (module prefix, floor); the longest matching prefix wins
    ("host.errors", 0),
    ("host.feed", 1),
    ("host.card", 2),
    ("hw", 2),
    ("host.trading", 3),
    ("host.cli", 4),
    ("host.cluster", 4),
    ("host.console", 4),
    ("host.store", 4),
    ("host.__main__", 4),
    ("host", 4),
)


def _modules() -> dict[str, Path]:
    mods = {}
    for top in ("host", "hw"):
        for f in sorted((ROOT / top).rglob("*.py")):
            parts = list(f.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            mods[".".join(parts)] = f
    return mods


MODULES = _modules()


def floor(mod: str) -> int | None:
    best = None
    for prefix, fl in FLOORS:
        if (mod == prefix or mod.startswith(prefix + ".")) and (
            best is None or len(prefix) > len(best[0])
        ):
            best = (prefix, fl)
    return None if best is None else best[1]


def _resolve(mod: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    pkg = mod.split(".")
    if MODULES[mod].name != "__init__.py":
        pkg = pkg[:-1]
    pkg = pkg[: len(pkg) - (node.level - 1)]
    return ".".join(pkg + ([node.module] if node.module else []))


def imports(mod: str) -> set[str]:
    """Project modules ``mod`` imports (anywhere in its body)."""
    tree = ast.parse(MODULES[mod].read_text(), filename=str(MODULES[mod]))
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(mod, node)
            names = [
                f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names
            ]
        else:
            continue
        for n in names:
            while n and n not in MODULES:  # `import host.feed.spec as s`, attribute imports
                n = n.rpartition(".")[0]
            if n and n != mod:
                out.add(n)
    return out


GRAPH = {m: imports(m) for m in MODULES}


def test_every_module_has_a_floor():
    assert [m for m in MODULES if floor(m) is None] == []


def test_no_import_from_a_floor_above():
    bad = [
        f"{m} (floor {floor(m)}) imports {d} (floor {floor(d)})"
        for m, deps in GRAPH.items()
        for d in sorted(deps)
        if floor(d) > floor(m)
    ]
    assert bad == []


def test_gateware_imports_only_the_feed_floor_of_the_host():
    bad = [
        f"{m} imports {d}"
        for m, deps in GRAPH.items()
        if m.split(".")[0] == "hw"
        for d in sorted(deps)
        if d.startswith("host") and not (d == "host.feed" or d.startswith("host.feed."))
    ]
    assert bad == []


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph.get(w, ())))))
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
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
    return out


def test_no_import_cycle():
    assert cycles(GRAPH) == []


@pytest.mark.parametrize(
    "graph, n",
    [
        ({"a": {"b"}, "b": {"c"}, "c": set()}, 0),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, 1),
        ({"a": {"b"}, "b": {"a"}, "c": {"d"}, "d": {"c"}}, 2),
    ],
)
def test_cycle_finder_finds_cycles(graph, n):
    """The checker itself can fail: it sees a planted cycle."""
    assert len(cycles(graph)) == n


def test_floor_checker_sees_an_upward_import():
    assert floor("host.feed.book") < floor("host.card.replay") < floor("host.trading.session")
    assert floor("host.cli.feed") > floor("host.trading.session")
    assert floor("hw.book") == floor("host.card")
