"""The house's import rules, checked on the source with :mod:`ast`.

* The core (``gptalk_proto``) never imports the transports, nor a module that
  does IO or reads a clock or entropy (time and entropy come in as arguments);
  its ``testing`` helpers are exempt from the second rule only.
* The transports import only the core's public modules: no
  ``gptalk_proto._x`` and no ``gptalk_proto.room._x``.
* No import cycle among the project's modules.  Only imports that run when a
  module is imported count: statements at module level (also under a
  module-level ``if``/``try``), not those inside a function (they run later)
  and not those under ``if TYPE_CHECKING:`` (they never run).  An edge goes to
  the module named; the parent packages that Python imports on the way are not
  counted, or every ``from ._errors import`` would close a loop through
  ``__init__``.
* No module of the two packages is longer than :data:`MAX_MODULE_LINES`.

The rules are read from the source, so a test fails on the import a change
adds, before anything runs.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: The project's packages and where their source lives.
PACKAGES = {
    "gptalk_proto": ROOT / "gptalk_proto",
    "gptalk_transports": ROOT / "transports" / "gptalk_transports",
}

#: The house's cap on a module: past it, a module has more than one concern.
MAX_MODULE_LINES = 600

#: Modules the core must not import (IO, clocks, entropy, logging set-up).
CORE_FORBIDDEN = frozenset(
    {
        "asyncio",
        "anyio",
        "logging",
        "os",
        "random",
        "secrets",
        "select",
        "selectors",
        "socket",
        "ssl",
        "subprocess",
        "threading",
        "time",
        "trio",
    }
)

#: Known cycles, each to be removed by the named issue; a cycle listed here
#: that no longer exists fails the test too, so the list only shrinks.
ALLOWED_CYCLES: list[frozenset[str]] = []

#: Modules over the cap, each to be split by the named issue; same rule.
ALLOWED_LONG: dict[str, str] = {}


def _modules() -> dict[str, Path]:
    found = {}
    for package, folder in PACKAGES.items():
        for path in sorted(folder.rglob("*.py")):
            parts = path.relative_to(folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join((package, *parts))] = path
    return found


MODULES = _modules()


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _top_level_imports(body: list[ast.stmt]) -> Iterator[ast.Import | ast.ImportFrom]:
    """Imports that run when the module is imported (see the module doc)."""
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If):
            if not _is_type_checking(node.test):
                yield from _top_level_imports(node.body)
            yield from _top_level_imports(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody):
                yield from _top_level_imports(block)
            for handler in node.handlers:
                yield from _top_level_imports(handler.body)


def _imported(module: str, node: ast.Import | ast.ImportFrom) -> Iterator[str]:
    """The absolute names of the modules one import statement imports."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            yield alias.name
        return
    if node.level:
        base = module.split(".")
        if MODULES[module].name != "__init__.py":
            base = base[:-1]
        base = base[: len(base) - (node.level - 1)]
        source = ".".join(base + ([node.module] if node.module else []))
    else:
        source = node.module or ""
    # "from package import module" imports the module; "from module import
    # name" imports the module that holds the name.
    submodules = [f"{source}.{alias.name}" for alias in node.names]
    named = [name for name in submodules if name in MODULES]
    yield from named
    if len(named) < len(submodules):
        yield source


def _graph() -> dict[str, set[str]]:
    graph = {}
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        graph[module] = {
            name for node in _top_level_imports(tree.body) for name in _imported(module, node)
        }
    return graph


GRAPH = _graph()


def _all_imports(module: str) -> Iterator[str]:
    """Every import in a module, wherever it stands (for the layer rules)."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield from _imported(module, node)


def _is_private(name: str) -> bool:
    return any(part.startswith("_") and part != "__init__" for part in name.split(".")[1:])


def _cycles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(graph.get(node, ()) & graph.keys()):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph.get(node, ()):
                found.append(frozenset(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


CORE = sorted(name for name in MODULES if name.split(".")[0] == "gptalk_proto")
TRANSPORTS = sorted(name for name in MODULES if name.split(".")[0] == "gptalk_transports")


@pytest.mark.parametrize("module", CORE)
def test_the_core_imports_no_transport_nor_io(module: str) -> None:
    imported = set(_all_imports(module))
    assert not {name for name in imported if name.split(".")[0] == "gptalk_transports"}
    if module.startswith("gptalk_proto.testing"):
        return
    assert not {name for name in imported if name.split(".")[0] in CORE_FORBIDDEN}


@pytest.mark.parametrize("module", TRANSPORTS)
def test_the_transports_use_public_core_modules_only(module: str) -> None:
    private = {
        name
        for name in _all_imports(module)
        if name.split(".")[0] == "gptalk_proto" and _is_private(name)
    }
    assert not private, f"{module} imports private core modules: {sorted(private)}"


def test_no_import_cycle() -> None:
    cycles = _cycles(GRAPH)
    unexpected = [sorted(cycle) for cycle in cycles if cycle not in ALLOWED_CYCLES]
    assert not unexpected, f"import cycles: {unexpected}"
    gone = [sorted(cycle) for cycle in ALLOWED_CYCLES if cycle not in cycles]
    assert not gone, f"allowed cycles that no longer exist (delete them from the list): {gone}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_module_length(module: str) -> None:
    lines = len(MODULES[module].read_text(encoding="utf-8").splitlines())
    if module in ALLOWED_LONG:
        assert lines > MAX_MODULE_LINES, f"{module} is short now: delete it from ALLOWED_LONG"
        return
    assert lines <= MAX_MODULE_LINES, f"{module} has {lines} lines (cap {MAX_MODULE_LINES})"


# The checks check themselves: each must see what it is meant to see.


def test_the_walk_sees_a_cycle_and_skips_type_checking() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [frozenset({"a", "b", "c"})]
    tree = ast.parse(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    import hidden\n"
        "try:\n    import tried\nexcept ImportError:\n    import fallback\n"
        "def f():\n    import lazy\n"
    )
    seen = {alias.name for node in _top_level_imports(tree.body) for alias in node.names}
    assert seen == {"TYPE_CHECKING", "tried", "fallback"}


def test_the_walk_resolves_relative_and_private_names() -> None:
    module = "gptalk_proto.cassette._replay"
    body = ast.parse("from .._util import NEED_DATA\nfrom . import _format").body
    nodes = [node for node in body if isinstance(node, ast.ImportFrom)]
    assert [list(_imported(module, node)) for node in nodes] == [
        ["gptalk_proto._util"],
        ["gptalk_proto.cassette._format"],
    ]
    assert _is_private("gptalk_proto.cassette._format")
    assert _is_private("gptalk_proto._util")
    assert not _is_private("gptalk_proto.cassette")
    assert "gptalk_proto._chat" in GRAPH["gptalk_proto"]


#: h11's exceptions, caught and re-typed in gptalk_proto._http11 only.
H11_ERRORS = frozenset({"LocalProtocolError", "RemoteProtocolError", "ProtocolError"})


def _h11_names(source: str) -> Iterator[tuple[str, int]]:
    """Every ``h11.name`` and every keyword of an ``h11.X(...)`` call in source."""
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "h11"
        ):
            yield node.attr, node.lineno
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            base = node.func.value
            if isinstance(base, ast.Name) and base.id == "h11":
                yield from ((k.arg, node.lineno) for k in node.keywords if k.arg)


@pytest.mark.parametrize("module", CORE)
def test_the_core_uses_no_private_h11_name_and_retypes_h11_errors_once(module: str) -> None:
    names = list(_h11_names(MODULES[module].read_text(encoding="utf-8")))
    private = [(name, line) for name, line in names if name.startswith("_")]
    assert not private, f"{module} uses private h11 names: {private}"
    if module != "gptalk_proto._http11":
        caught = [(name, line) for name, line in names if name in H11_ERRORS]
        assert not caught, f"{module} handles h11's errors itself (use _http11): {caught}"


def test_the_h11_check_sees_private_names_and_errors() -> None:
    source = (
        "conn.send(h11.Request(method=b'GET', target=b'/', headers=[], _parsed=True))\n"
        "try:\n    conn.next_event()\nexcept h11.RemoteProtocolError:\n    pass\n"
    )
    seen = {name for name, _ in _h11_names(source)}
    assert {"_parsed", "RemoteProtocolError", "Request", "method"} <= seen


#: What each room of the core may import from the core: the client (the top
#: level) and the generic SSE room stand below the server and cassette rooms.
ROOM_MAY_IMPORT = {
    # (_public is a leaf: it imports nothing of the project.)
    "gptalk_proto.sse": ("gptalk_proto._errors", "gptalk_proto._public", "gptalk_proto.sse"),
    "client": ("gptalk_proto._", "gptalk_proto.sse"),
}


@pytest.mark.parametrize("module", CORE)
def test_the_rooms_stand_in_layers(module: str) -> None:
    if module.startswith("gptalk_proto.sse"):
        allowed = ROOM_MAY_IMPORT["gptalk_proto.sse"]
    elif module.startswith("gptalk_proto._"):
        allowed = ROOM_MAY_IMPORT["client"]
    else:
        return
    core = {name for name in _all_imports(module) if name.split(".")[0] == "gptalk_proto"}
    beyond = sorted(name for name in core if not name.startswith(allowed))
    assert not beyond, f"{module} reaches above its layer: {beyond}"
