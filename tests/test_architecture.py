"""The shape of the package: the event pipeline's stages import only downwards."""

from __future__ import annotations

import ast
from pathlib import Path

RUNTIME = Path(__file__).resolve().parent.parent / "runtime"


def _imports() -> dict[str, set[str]]:
    """runtime module -> the runtime modules it imports (at run time, not for typing)."""
    graph: dict[str, set[str]] = {}
    for path in RUNTIME.rglob("*.py"):
        parts = path.relative_to(RUNTIME.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found: set[str] = set()
        for node in _module_level(ast.parse(path.read_text()).body):
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                if node.module:  # `from . import x` imports x, not the package again
                    found.add(base)
                found.update(f"{base}.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
        graph[name] = {m for m in found if m.startswith("runtime")}
    return {name: {m for m in deps if m in graph} - {name} for name, deps in graph.items()}


def _module_level(body: list[ast.stmt]) -> list[ast.stmt]:
    """The statements run at import: not those in functions, nor `if TYPE_CHECKING:`."""
    found: list[ast.stmt] = []
    for node in body:
        if isinstance(node, ast.If):
            if "TYPE_CHECKING" not in ast.unparse(node.test):
                found.extend(_module_level(node.body + node.orelse))
        elif isinstance(node, ast.Try):
            found.extend(_module_level(node.body + node.orelse + node.finalbody))
        elif not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            found.append(node)
    return found


def test_nothing_in_the_realtime_package_imports_the_broker_back() -> None:
    for name, deps in _imports().items():
        if name.startswith("runtime.realtime.") and name != "runtime.realtime.extension":
            assert "runtime.realtime_broker" not in deps, name
            assert "runtime.realtime.extension" not in deps, name


def test_no_import_cycles() -> None:
    graph = _imports()
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        if name in path:
            cycle = [*path[path.index(name) :], name]
            raise AssertionError("import cycle: " + " -> ".join(cycle))
        if name in done:
            return
        for dep in sorted(graph[name]):
            visit(dep, [*path, name])
        done.add(name)

    for name in sorted(graph):
        visit(name, [])
