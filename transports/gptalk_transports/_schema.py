"""The cassette format's JSON Schema, as shipped inside the package.

The schema is data of the core (``gptalk_proto/cassette/cassette.schema.json``, next to
the loader it describes); reading a file is IO, so the reader lives here.
One copy only: ``gptalk cassette schema`` prints it, and the tests hold the
loader to it.
"""

from __future__ import annotations

from importlib.resources import files

__all__ = ["cassette_schema"]

#: The schema's file name inside the ``gptalk_proto.cassette`` package.
SCHEMA_RESOURCE = "cassette.schema.json"


def cassette_schema() -> str:
    """The JSON Schema (2020-12) of the cassette format, as text.

    Read through :mod:`importlib.resources`, so it works from a wheel, a zip
    or a source checkout alike.
    """
    return (files("gptalk_proto.cassette") / SCHEMA_RESOURCE).read_text(encoding="utf-8")
