"""The documentation site is built on every run, and documents every public name.

* ``python -m sphinx -W --keep-going -b html docs <tmp>/html`` succeeds:
  any warning (a broken reference, a bad docstring, a page outside every
  toctree) fails the test.
* Every name of a public module's ``__all__`` has a docstring (a constant: a
  ``#:`` comment where it is assigned), and so has every public method and
  property of its classes.
* Every such name has an entry in the built site's inventory, in its public
  module.

The code examples of the pages run in ``tests/test_readme.py``.
"""

from __future__ import annotations

import importlib
import inspect
import os
import runpy
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from .readme_sync import DOCS

for _needed in ("sphinx", "furo", "myst_parser", "sphinxcontrib.mermaid"):
    pytest.importorskip(
        _needed, reason=f"{_needed} is not installed: pip install -e '.[docs]' builds the site"
    )

from sphinx.util.inventory import InventoryFile  # noqa: E402

sys.path.insert(0, str(DOCS / "_ext"))
from public_names import PUBLIC_MODULES, constant_doc  # noqa: E402

sys.path.remove(str(DOCS / "_ext"))


def _public() -> list[tuple[str, str]]:
    return [(m, n) for m in PUBLIC_MODULES for n in importlib.import_module(m).__all__]


def _is_documented_object(value: object) -> bool:
    return inspect.isclass(value) or inspect.isfunction(value)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site, built as CI builds it: offline, warnings as errors."""
    out = tmp_path_factory.mktemp("docs") / "html"
    env = dict(os.environ)
    # Offline, as in CI: intersphinx is on only where the network is (docs/conf.py).
    env.pop("READTHEDOCS", None)
    env.pop("GPTALK_DOCS_INTERSPHINX", None)
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-b", "html", str(DOCS), str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-6000:]
    return out


def test_the_site_builds_without_a_warning(site: Path) -> None:
    assert (site / "index.html").is_file()
    for page in ("tutorials/client", "reference/api/gptalk_transports", "reference/cli"):
        assert (site / f"{page}.html").is_file(), page


@pytest.mark.parametrize(("module", "name"), _public(), ids=[f"{m}.{n}" for m, n in _public()])
def test_every_public_name_has_a_docstring(module: str, name: str) -> None:
    value = getattr(importlib.import_module(module), name)
    if _is_documented_object(value):
        assert (value.__doc__ or "").strip(), f"{module}.{name} has no docstring"
        assert value.__module__ in PUBLIC_MODULES, (
            f"{module}.{name}: __module__ is {value.__module__!r}, a private module"
        )
    elif not isinstance(value, ModuleType):
        assert constant_doc(module, name), f"{module}.{name} has no #: comment where assigned"


def _methods(cls: type) -> list[str]:
    """The public methods and properties ``cls`` defines itself."""
    found = []
    for attribute, member in vars(cls).items():
        if attribute.startswith("_"):
            continue
        function = member.fget if isinstance(member, property) else member
        function = getattr(function, "__func__", function)
        if inspect.isfunction(function):
            found.append(attribute)
    return found


@pytest.mark.parametrize(
    ("module", "name"),
    [(m, n) for m, n in _public() if inspect.isclass(getattr(importlib.import_module(m), n))],
)
def test_every_public_method_has_a_docstring(module: str, name: str) -> None:
    cls = getattr(importlib.import_module(module), name)
    missing = [a for a in _methods(cls) if not (getattr(cls, a).__doc__ or "").strip()]
    assert not missing, f"{module}.{name}: no docstring on {missing}"


def test_every_public_name_has_a_reference_entry(site: Path) -> None:
    with (site / "objects.inv").open("rb") as stream:
        inventory = InventoryFile.load(stream, "", os.path.join)
    documented = {name for entries in inventory.values() for name in entries}
    missing = []
    for module, name in _public():
        value = getattr(importlib.import_module(module), name)
        if isinstance(value, ModuleType):
            continue
        if _is_documented_object(value):
            # A re-export is documented once, in the module that owns it.
            full = f"{value.__module__}.{value.__name__}"
        else:
            full = f"{module}.{name}"
        if full not in documented:
            missing.append(full)
    assert not missing, f"no reference entry (docs/reference/api/): {missing}"


@pytest.mark.parametrize("online", [True, False])
def test_intersphinx_is_on_only_where_the_network_is(
    online: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Read the Docs sets READTHEDOCS=True; offline (CI, the tests) a fetch
    # would fail, and -W would make that failure an error.
    monkeypatch.delenv("GPTALK_DOCS_INTERSPHINX", raising=False)
    if online:
        monkeypatch.setenv("READTHEDOCS", "True")
    else:
        monkeypatch.delenv("READTHEDOCS", raising=False)
    conf = runpy.run_path(str(DOCS / "conf.py"))
    projects = {"python", "anyio", "trio", "h11", "hypothesis", "pytest"}
    assert set(conf["INTERSPHINX"]) == projects
    assert set(conf["intersphinx_mapping"]) == (projects if online else set())
