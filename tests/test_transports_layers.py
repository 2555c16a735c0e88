"""The transports' import arrows run one way: CLI and plugin -> clients and
servers -> drivers -> backends -> the shared helpers and the core.

Read from the source (no import runs): a test fails when a module imports a
layer above its own, when the CLI or the plugin reaches around the clients to
a driver or a backend, when the generated blocking side imports the async one,
or when an import cycle appears.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "transports" / "gptalk_transports"

ENTRY, APPS, DRIVERS, BACKENDS, SHARED = 4, 3, 2, 1, 0

#: Layer of each module, by name relative to the package (first match wins).
LAYERS = (
    ("_cli", ENTRY),
    ("_plugin", ENTRY),
    ("pytest_plugin", ENTRY),
    ("__init__", APPS),
    ("_async.client", APPS),
    ("_sync.client", APPS),
    ("_async.cassette_client", APPS),
    ("_sync.cassette_client", APPS),
    ("_session", APPS),
    ("_scenarios", APPS),
    ("_load", APPS),
    ("_g4f", APPS),
    ("_server.refserver", APPS),
    ("_server.replay", APPS),
    ("_server.proxy", APPS),
    ("_server.proxy_run", APPS),
    ("_async", DRIVERS),
    ("_sync", DRIVERS),
    ("_server", DRIVERS),
    ("_backends", BACKENDS),
    ("", SHARED),  # _config, _exceptions, _handshake, _cassettes, _episodes, _retry, ...
)


def layer(name: str) -> int:
    for prefix, number in LAYERS:
        if name == prefix or name.startswith(prefix + ".") or prefix == "":
            return number
    raise AssertionError(name)  # pragma: no cover - the "" row matches all


def modules() -> dict[str, set[str]]:
    """Each module (dotted, relative to the package) and the modules it imports."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        found[".".join(parts)] = path
    graph: dict[str, set[str]] = {}
    for name, path in found.items():
        package = name.split(".")[:-1]
        imports = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ImportFrom):
                continue
            if node.level:
                base = package[: len(package) - (node.level - 1)]
            elif (node.module or "").startswith("gptalk_transports"):
                base, node.module = [], (node.module or "").partition(".")[2] or None
            else:
                continue
            target = ".".join([*base, *([node.module] if node.module else [])])
            for alias in node.names:
                for candidate in (f"{target}.{alias.name}".strip("."), target):
                    if candidate in found or f"{candidate}.__init__" in found:
                        imports.add(candidate if candidate in found else f"{candidate}.__init__")
                        break
        graph[name] = imports - {name}
    return graph


GRAPH = modules()


@pytest.mark.parametrize("name", sorted(GRAPH))
def test_no_module_imports_a_layer_above_its_own(name: str) -> None:
    above = [t for t in GRAPH[name] if layer(t) > layer(name) and not t.endswith("__init__")]
    assert not above, f"{name} imports {above} from a layer above"


@pytest.mark.parametrize("name", sorted(n for n in GRAPH if layer(n) == ENTRY))
def test_the_cli_and_the_plugin_go_through_the_clients(name: str) -> None:
    around = [t for t in GRAPH[name] if layer(t) in (DRIVERS, BACKENDS)]
    assert not around, f"{name} reaches around the clients to {around}"


@pytest.mark.parametrize("name", sorted(n for n in GRAPH if n.startswith("_sync.")))
def test_the_generated_side_never_imports_the_async_side(name: str) -> None:
    assert not [t for t in GRAPH[name] if t.startswith("_async")]


def test_no_import_cycle() -> None:
    # Package __init__ modules re-export; an edge to one is not a dependency.
    edges = {n: {t for t in ts if not t.endswith("__init__")} for n, ts in GRAPH.items()}
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> None:
        if node in path:
            raise AssertionError("import cycle: " + " -> ".join([*path[path.index(node) :], node]))
        if node in done:
            return
        for target in sorted(edges[node]):
            visit(target, [*path, node])
        done.add(node)

    for node in sorted(edges):
        visit(node, [])


def test_the_layers_catch_a_wrong_arrow() -> None:
    # The rules above can fail: a driver importing the CLI would be caught.
    assert layer("_async.driver") < layer("_cli.app")
    assert layer("_backends.sync") < layer("_async.connector") < layer("_async.client")
    assert layer("_handshake") == SHARED
