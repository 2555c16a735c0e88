"""The public names of gptalk-proto, and the documentation of its constants.

A public module re-exports constants from private ones (``SSEParser``'s caps
come from ``gptalk_proto.sse._parser``), and their documentation is the ``#:``
comment where they are assigned.  autodoc reads such comments only in the
module it documents, so it would skip them; this extension finds each one
where it was written.  ``tests/test_docs.py`` uses the same lookup to check
that every public name is documented.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from types import ModuleType
from typing import Any

from sphinx.pycode import ModuleAnalyzer
from sphinx.util.docutils import SphinxDirective

#: The public modules, each documented on one reference page.
PUBLIC_MODULES = (
    "gptalk_proto",
    "gptalk_proto.sse",
    "gptalk_proto.server",
    "gptalk_proto.cassette",
    "gptalk_proto.testing",
    "gptalk_proto.testing.strategies",
    "gptalk_transports",
)


def _is_constant(value: object) -> bool:
    return not (isinstance(value, (type, ModuleType)) or inspect.isroutine(value))


def constant_doc(module: str, name: str) -> str | None:
    """The ``#:`` comment (or docstring after the assignment) of a re-exported
    constant, from the private module of ``module``'s package that assigns it."""
    value = getattr(importlib.import_module(module), name)
    package = module.split(".", 1)[0]
    private = sorted(m for m in list(sys.modules) if m.startswith(package + ".") and "._" in m)
    candidates = [module, *private]
    for candidate in candidates:
        if getattr(sys.modules.get(candidate), name, _MISSING) is not value:
            continue
        try:
            docs = ModuleAnalyzer.for_module(candidate).find_attr_docs()
        except Exception:  # a module without source has no comments
            continue
        lines = docs.get(("", name))
        if lines and "".join(lines).strip():
            return "\n".join(lines).strip()
    return None


_MISSING = object()


class PublicConstants(SphinxDirective):
    """``.. public-constants:: MODULE``: an ``autodata`` entry for each constant
    of the module's ``__all__`` (automodule documents only those whose comment
    is in the module itself)."""

    required_arguments = 1

    def run(self) -> list[Any]:
        module = importlib.import_module(self.arguments[0])
        lines = []
        for name in module.__all__:
            value = getattr(module, name)
            if _is_constant(value):
                lines.append(f".. autodata:: {module.__name__}.{name}")
                if len(repr(value)) > _MAX_VALUE_SHOWN:
                    lines.append("   :no-value:")
                lines.append("")
        return self.parse_text_to_nodes("\n".join(lines))


#: A constant's value is shown only when its repr is short (a table is not).
_MAX_VALUE_SHOWN = 80


def _constant(  # noqa: PLR0917 - the autodoc-process-docstring signature
    app: Any, what: str, name: str, obj: object, options: Any, lines: list[str]
) -> None:
    if what != "data":
        return
    module, _, attribute = name.rpartition(".")
    if module in PUBLIC_MODULES:
        doc = constant_doc(module, attribute)
        if doc is not None:
            lines[:] = doc.splitlines()


def setup(app: Any) -> dict[str, Any]:
    app.add_directive("public-constants", PublicConstants)
    app.connect("autodoc-process-docstring", _constant)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
