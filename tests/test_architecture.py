"""The package's shape: ops know nothing of GPUs, the compile driver exists once, and no module
imports itself back through others (import circles), counting imports made inside functions too."""

from __future__ import annotations

import ast
from pathlib import Path

import wgnn

ROOT = Path(wgnn.__file__).parent


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in ROOT.rglob("*.py")}


def _imports(name: str) -> set[str]:
    """Every module ``name`` imports, at the top or inside a function. ``from A import b`` counts as
    an import of ``A.b`` where that is a module, else of ``A``; the implicit import of a package's
    ``__init__`` when one of its modules is imported is not counted."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                sub = f"{source}.{alias.name}"
                found.add(sub if sub in MODULES else source)
    return found


GRAPH = {name: {m for m in _imports(name) if m in MODULES and m != name} for name in MODULES}


def _reaches(start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for nxt in GRAPH[todo.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def test_the_import_graph_was_read():
    assert "wgnn.ops.registry" in GRAPH["wgnn.ops.nn"]
    assert "wgnn.backends.compute.policy" in GRAPH["wgnn.backends.compute.nn"]
    assert "wgnn.scheduler" in GRAPH["wgnn.session"]


def test_no_import_circles():
    circles = sorted(name for name in GRAPH if name in _reaches(name))
    assert circles == [], f"modules that import themselves back: {circles}"


def test_ops_know_nothing_of_gpus():
    forbidden = {"wgpu", "wgnn.runtime", "wgnn.shaders", "wgnn.scheduler"}
    for name in (n for n in MODULES if n == "wgnn.ops" or n.startswith("wgnn.ops.")):
        direct = _imports(name)
        reached = _reaches(name) | direct
        bad = sorted(m for m in reached if m in forbidden or m.startswith("wgnn.backends") or m.startswith("wgpu"))
        assert bad == [], f"{name} imports {bad}"
        source = MODULES[name].read_text()
        assert "def lower" not in source and "ctx.dispatch" not in source, f"{name} holds a GPU lowering"


def test_one_compile_driver():
    drivers = sorted(name for name, path in MODULES.items()
                     for node in ast.walk(ast.parse(path.read_text()))
                     if isinstance(node, ast.FunctionDef) and node.name.startswith("compile"))
    assert drivers == ["wgnn.scheduler"]
    # each backend registers a lowering per op it runs, in its own folder
    from wgnn.backends import BACKENDS

    for name, backend in BACKENDS.items():
        assert {"conv2d", "matmul", "pool2d", "softmax", "binary"} <= set(backend.lowerings), name
        for fn in backend.lowerings.values():
            assert fn.__module__.startswith(f"wgnn.backends.{name}."), (name, fn.__module__)
