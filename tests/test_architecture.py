"""The shape of the package, as the code's own imports show it.

The realtime wing is layered, top to bottom, and its middle is the event pipeline in
the data's order: capture → events → publishing (and its backends) → fan-out →
connections → transports. A module imports, at run time, only modules of its own layer
or of layers below it, so an import never runs back up the pipeline; a type from above
is imported for type checking only (under `if TYPE_CHECKING:`, which the layers do not
count). Nothing imports in a circle, not even for types. The rest of the app reaches
realtime only through its face, `runtime.realtime`, and the private parts of the
libraries the runtime reaches into only through their adapters (`runtime/adapters/`).
"""

from __future__ import annotations

import ast
from pathlib import Path

RUNTIME = Path(__file__).resolve().parent.parent / "runtime"

WING = "runtime.realtime"
# Top to bottom. Each entry is a module, or a package and everything in it.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    (
        "the app's face: the extension, its endpoints, their state",
        (f"{WING}.extension", f"{WING}.endpoints", f"{WING}.state", f"{WING}.metrics"),
    ),
    ("what clients may do: the door, the command router", (f"{WING}.clients",)),
    ("the broker, which ties the stages together", ("runtime.realtime_broker",)),
    ("the broker's jobs", (f"{WING}.broker",)),
    # The pipeline, in the data's order.
    ("capture", (f"{WING}.capture",)),
    ("events", (f"{WING}.events",)),
    ("publishing and its backends", (f"{WING}.publishing",)),
    ("fan-out", (f"{WING}.fanout",)),
    ("connections and their queues", (f"{WING}.connections",)),
    ("transports and their sinks", (f"{WING}.transports",)),
    (
        "what every stage speaks",
        (
            f"{WING}.protocol",
            f"{WING}.patterns",
            f"{WING}.channels",
            f"{WING}.stats",
            f"{WING}.supervisor",
        ),
    ),
]

# Libraries whose insides only their adapter may import.
INSIDES = {
    "hypercorn.protocol": "runtime.adapters.hypercorn",
    "hypercorn.asyncio.tcp_server": "runtime.adapters.hypercorn",
    "hypercorn.asyncio.lifespan": "runtime.adapters.hypercorn",
    "wsproto": "runtime.adapters.wsproto",
    "quart.asgi": "runtime.adapters.quart",
    "quart.wrappers": "runtime.adapters.quart",
}


def _modules(typing: bool = False) -> dict[str, tuple[list[ast.stmt], bool]]:
    """runtime module -> the statements run when it is imported (with `typing`, those
    a type checker reads too), and whether it is a package."""
    found: dict[str, tuple[list[ast.stmt], bool]] = {}
    for path in RUNTIME.rglob("*.py"):
        parts = path.relative_to(RUNTIME.parent).with_suffix("").parts
        package = parts[-1] == "__init__"
        name = ".".join(parts[:-1] if package else parts)
        found[name] = (_module_level(ast.parse(path.read_text()).body, typing), package)
    return found


def _module_level(body: list[ast.stmt], typing: bool = False) -> list[ast.stmt]:
    """The statements run at import: not those in functions, nor `if TYPE_CHECKING:`
    (unless `typing`)."""
    found: list[ast.stmt] = []
    for node in body:
        if isinstance(node, ast.If):
            if typing or "TYPE_CHECKING" not in ast.unparse(node.test):
                found.extend(_module_level(node.body + node.orelse, typing))
        elif isinstance(node, ast.Try):
            found.extend(_module_level(node.body + node.orelse + node.finalbody, typing))
        elif not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            found.append(node)
    return found


def _imported(name: str, statements: list[ast.stmt], is_package: bool) -> set[str]:
    """Every module (runtime's or a library's) `name` imports at run time, and the
    names it imports from them (which may be modules too)."""
    package = name if is_package else name.rpartition(".")[0]
    found: set[str] = set()
    for node in statements:
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
    return found


def _imports(typing: bool = False) -> dict[str, set[str]]:
    """runtime module -> the runtime modules it imports (at run time; with `typing`,
    for type checking too)."""
    modules = _modules(typing)
    return {
        name: {m for m in _imported(name, *parsed) if m in modules} - {name}
        for name, parsed in modules.items()
    }


def _layer(module: str) -> int | None:
    for index, (_, members) in enumerate(LAYERS):
        if any(module == m or module.startswith(m + ".") for m in members):
            return index
    return None


def _upward(graph: dict[str, set[str]]) -> list[str]:
    """The imports of `graph` that run from a layer to one above it."""
    found = []
    for name, deps in graph.items():
        here = _layer(name)
        for dep in deps:
            there = _layer(dep)
            if here is not None and there is not None and there < here:
                found.append(f"{name} ({LAYERS[here][0]}) -> {dep} ({LAYERS[there][0]})")
    return sorted(found)


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A circle of imports in `graph`, if there is one."""
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> list[str] | None:
        if name in path:
            return [*path[path.index(name) :], name]
        if name in done:
            return None
        for dep in sorted(graph.get(name, ())):
            cycle = visit(dep, [*path, name])
            if cycle is not None:
                return cycle
        done.add(name)
        return None

    for name in sorted(graph):
        cycle = visit(name, [])
        if cycle is not None:
            return cycle
    return None


def test_every_module_of_the_wing_has_its_layer() -> None:
    wing = [m for m in _imports() if m.startswith(WING + ".") or m == "runtime.realtime_broker"]
    # A stage's package (`runtime.realtime.fanout`) is its layer; the wing's own
    # package is its face to the app, above every layer.
    unplaced = [m for m in wing if _layer(m) is None]
    assert unplaced == [], f"give these a layer in LAYERS: {unplaced}"


def test_no_import_runs_back_up_the_layers_or_the_pipeline() -> None:
    upward = _upward(_imports())
    assert upward == [], "imports that run back up:\n" + "\n".join(upward)


def test_no_import_cycles_not_even_for_types() -> None:
    cycle = _cycle(_imports(typing=True))
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_rest_of_the_app_uses_realtime_through_its_face() -> None:
    reaching = []
    for name, deps in _imports().items():
        if name.startswith(WING) or name == "runtime.realtime_broker":
            continue
        for dep in deps:
            if dep.startswith(WING + ".") or dep == "runtime.realtime_broker":
                reaching.append(f"{name} -> {dep}")
    assert reaching == [], "import these from runtime.realtime:\n" + "\n".join(reaching)


def test_only_the_adapters_import_the_libraries_insides() -> None:
    reaching = []
    for name, parsed in _modules().items():
        for dep in _imported(name, *parsed):
            for inside, adapter in INSIDES.items():
                if (dep == inside or dep.startswith(inside + ".")) and name != adapter:
                    reaching.append(f"{name} -> {dep} (only {adapter} may)")
    assert reaching == [], "\n".join(sorted(reaching))


def test_the_checks_fail_on_what_they_forbid() -> None:
    fanout, connection = f"{WING}.fanout.delivery", f"{WING}.connections.connection"
    assert _upward({fanout: {connection}}) == []  # down the pipeline: fine
    assert _upward({connection: {fanout}}) == [
        f"{connection} (connections and their queues) -> {fanout} (fan-out)"
    ]
    assert _upward({f"{WING}.protocol": {"runtime.realtime_broker"}}) != []
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None
    code = "from ..connections.connection import Connection\nif TYPE_CHECKING:\n    import x"
    statements = _module_level(ast.parse(code).body)
    assert _imported(fanout, statements, False) == {connection, f"{connection}.Connection"}
