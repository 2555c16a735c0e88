"""A cassette file whose text is JSON but not UTF-8 text: a lone surrogate
(``"\\ud800"``) in a field the loader encodes.  Every command refuses it in
one line naming the field, as any broken cassette (test_cassette_loading);
it was an internal error (exit 70)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gptalk_transports._cli.exits import EXIT_CODES

from .console import gptalk
from .replay_cases import CASSETTES
from .test_cassette_loading import LOADERS, Raw, _set

#: Where a lone surrogate goes, and the field the message must name.
SURROGATES = [
    ("interactions[2].chunks[1].data", "interactions[2].chunks[1].data"),
    ("interactions[0].request.body.encoding", "interactions[0].request.body.data"),
]


@pytest.mark.parametrize(("where", "field"), SURROGATES, ids=[s[0] for s in SURROGATES])
@pytest.mark.parametrize("command", LOADERS, ids=[" ".join(c) for c in LOADERS])
def test_a_lone_surrogate_is_a_cassette_error(
    tmp_path: Path, where: str, field: str, command: list[str]
) -> None:
    raw: Raw = json.loads((CASSETTES / "plain-chat.json").read_text(encoding="utf-8"))
    if where.endswith("body.encoding"):
        _set("interactions[0].request.body", {"encoding": "utf-8", "data": "\ud800"})(raw)
    else:
        _set(where, "\ud800")(raw)
    path = tmp_path / "surrogate.json"
    path.write_text(json.dumps(raw), encoding="ascii")  # "\ud800" as JSON writes it
    result = gptalk(*command, str(path))
    assert result.returncode == EXIT_CODES["cassette"], result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith(f"gptalk: error: {path}: {field}: "), line
