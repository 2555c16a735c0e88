"""Public paths for re-exported names: one helper every public module of the
core runs last.  A leaf: it imports nothing of the project, so every room,
the lowest included, may use it."""

from __future__ import annotations

from collections.abc import MutableMapping
from types import FunctionType

__all__ = ["show_as_public"]


def show_as_public(namespace: MutableMapping[str, object], module: str, *private: str) -> None:
    """Show the classes and functions a public module re-exports (its
    ``__all__``) as ``module.X`` when they are defined in one of the
    ``private`` modules: ``help()``, reprs and the documentation then name the
    public path, not ``gptalk_proto.room._module.X``."""
    names = namespace["__all__"]
    assert isinstance(names, list)
    for name in names:
        obj = namespace[name]
        if isinstance(obj, (type, FunctionType)) and obj.__module__.startswith(private):
            obj.__module__ = module
