"""The package layering of docs/architecture.md, checked on the source: imports point one way
and form no cycle (lazy imports inside functions count too)."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

# a subsystem may import only those listed (and itself); the top level (errors, settings,
# tokens, processes) is open to all
ALLOWED: dict[str, set[str]] = {
    "telemetry": set(),  # logs, metrics and traces: recorded where the work happens, below it all
    "model": set(),
    "fetch": {"model", "telemetry"},
    "runtime": {"model", "fetch", "telemetry"},
    "jobs": {"model", "telemetry"},
    "versions": {"jobs", "model", "telemetry"},  # version records in the job store, their files in the data dir
    "client": {"runtime"},  # media negotiation helpers only
    "oip": {"model", "runtime", "telemetry"},
    "web": {"model", "fetch", "runtime", "jobs", "versions", "oip", "telemetry"},
    "serve": {"web", "runtime", "jobs", "versions", "model", "oip", "telemetry"},
    "cli": {"model", "fetch", "runtime", "jobs", "versions", "client", "serve", "web", "telemetry"},
}
BASE = {"errors", "settings", "tokens", "processes", ""}


def _modules() -> dict[str, Path]:
    out = {}
    for path in (SRC / "modelaas").rglob("*.py"):
        name = ".".join(path.relative_to(SRC).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = path
    return out


def _imports(path: Path, known: dict[str, Path]) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("modelaas"):
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                found.add(full if full in known else node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("modelaas")}
    return {m for m in found if m in known}


def _subsystem(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_subsystems_import_only_what_lies_below_them():
    known = _modules()
    wrong = []
    for module, path in known.items():
        own = _subsystem(module)
        if own in BASE or own not in ALLOWED:
            continue
        for target in _imports(path, known):
            other = _subsystem(target)
            if other != own and other not in BASE and other not in ALLOWED[own]:
                wrong.append(f"{module} -> {target}")
    assert wrong == []


def test_no_import_cycles():
    known = _modules()
    graph = {m: _imports(p, known) for m, p in known.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
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
                cycles.append(sorted(component))

    for module in graph:
        if module not in index:
            visit(module)
    assert cycles == []
