"""The cassette file format: round trips, layout, schema, and the loader's errors."""

from __future__ import annotations

import base64
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

import gptalk_proto as g
import gptalk_proto.cassette
from gptalk_proto.cassette._response import parse_response
from gptalk_transports import cassette_schema
from gptalk_transports._cassettes import load_cassette

from .cassette_mutations import AGREEMENT, MUTATIONS, Mutation, Raw, edit_event_data

CASSETTES = Path(__file__).resolve().parent.parent / "cassettes"
SHIPPED = sorted(CASSETTES.glob("*.json"))
# The one copy of the schema: the one shipped inside the package.
SCHEMA: dict[str, Any] = json.loads(cassette_schema())
VALIDATOR = Draft202012Validator(SCHEMA)

shipped = pytest.mark.parametrize("path", SHIPPED, ids=[path.stem for path in SHIPPED])


def test_eleven_cassettes_ship() -> None:
    # Nine GPTalk scenarios, and one streaming call of each official SDK
    # (openai, anthropic) under the generic profile.
    profiles = [load_cassette(path).profile for path in SHIPPED]
    assert profiles.count("gptalk") == 9
    assert sorted(p.stem for p in SHIPPED if load_cassette(p).profile == "generic") == [
        "anthropic-stream",
        "openai-stream",
    ]


def response_from(method: str, chunks: list[tuple[float, bytes]], end: str = "complete") -> Any:
    """A RecordedResponse whose head and events are what its chunks say."""
    recorded = tuple(g.cassette.RecordedChunk(t, data) for t, data in chunks)
    status, headers, _, events = parse_response(method, b"".join(data for _, data in chunks))
    return g.cassette.RecordedResponse(status, headers, recorded, tuple(events), end)


# -- round trips and determinism ----------------------------------------------------


@shipped
def test_shipped_cassette_round_trips(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    cassette = g.cassette.Cassette.loads(text)
    # Loading and dumping gives the file's exact text back ...
    assert cassette.dumps() == text
    # ... dumping is deterministic ...
    assert cassette.dumps() == cassette.dumps()
    # ... and dumps -> loads gives the same object.
    again = g.cassette.Cassette.loads(cassette.dumps())
    assert again == cassette
    assert again.interactions == cassette.interactions
    assert again.meta == cassette.meta
    assert g.cassette.Cassette.loads(text.encode("utf-8")) == cassette


@shipped
def test_one_chunk_or_event_per_line(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    raw = json.loads(text)
    lines = text.split("\n")
    assert text.endswith("}\n")
    assert lines[-1] == ""
    assert all(line == line.rstrip() for line in lines), "no trailing whitespace"
    # The lines at the chunk/event depth are exactly the chunks and events, in
    # order, each a complete JSON object on its own line.
    deep = [line for line in lines if line.startswith(" " * 8)]
    expected: list[Any] = []
    for item in raw["interactions"]:
        expected += item["chunks"]
        expected += item["events"]
    assert len(deep) == len(expected)
    for line, value in zip(deep, expected, strict=True):
        assert not line.startswith(" " * 9)
        assert json.loads(line.strip().removesuffix(",")) == value
    chunk_lines = [line.strip() for line in deep if line.strip().startswith('{"t": ')]
    event_lines = [line.strip() for line in deep if line.strip().startswith('{"event": ')]
    assert len(chunk_lines) == sum(len(item["chunks"]) for item in raw["interactions"])
    assert len(event_lines) == sum(len(item["events"]) for item in raw["interactions"])
    for line in chunk_lines:
        assert list(json.loads(line.removesuffix(","))) == ["t", "encoding", "data"]
    for line in event_lines:
        assert list(json.loads(line.removesuffix(","))) == ["event", "data", "id", "retry"]
    # Each request and each response head is one line too.
    heads = [line.strip() for line in lines if line.startswith('      "re')]
    assert len(heads) == 2 * len(raw["interactions"])
    for line in heads:
        json.loads("{" + line.removesuffix(",") + "}")
    # Text stays text: no \u escapes for what UTF-8 can say.
    if "\u201c" in json.dumps(raw, ensure_ascii=False):
        assert "\u201c" in text
        assert "\\u201c" not in text


def test_non_utf8_bytes_are_stored_as_base64() -> None:
    head = b"HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\ncontent-length: 8\r\n\r\n"
    body = "café".encode() + b"\xff\xfe\x00"
    assert len(body) == 8
    # The second read ends in the middle of the "é"; the third is binary.
    chunks = [(0.5, head), (0.75, body[:4]), (1.0, body[4:])]
    request = g.cassette.RecordedRequest(
        t=0.25,
        method="POST",
        target="/upload?x=1",
        headers=(("host", "example"), ("content-length", "5")),
        body=b"\x80\x81bin",
    )
    cassette = g.cassette.Cassette(
        interactions=(g.cassette.Interaction(1, request, response_from("POST", chunks)),),
        recorded_at="2024-01-02T03:04:05Z",
        origin="http://example",
    )
    text = cassette.dumps()
    lines = text.split("\n")
    chunk_lines = [
        json.loads(line.strip().rstrip(",")) for line in lines if line.startswith(" " * 8)
    ]
    assert [line["encoding"] for line in chunk_lines] == ["utf-8", "base64", "base64"]
    assert [line["t"] for line in chunk_lines] == [0.5, 0.75, 1.0]
    assert base64.b64decode(chunk_lines[1]["data"]) == b"caf\xc3"
    assert base64.b64decode(chunk_lines[2]["data"]) == b"\xa9\xff\xfe\x00"
    (request_text,) = [line for line in lines if line.startswith('      "request": ')]
    request_line = json.loads("{" + request_text.strip().rstrip(",") + "}")
    assert request_line["request"]["body"] == {
        "encoding": "base64",
        "data": base64.b64encode(b"\x80\x81bin").decode(),
    }
    loaded = g.cassette.Cassette.loads(text)
    assert loaded == cassette
    assert loaded.interactions[0].response.chunks[1].data == b"caf\xc3"
    assert loaded.interactions[0].request.body == b"\x80\x81bin"
    assert loaded.dumps() == text
    VALIDATOR.validate(json.loads(text))


def test_base64_is_accepted_for_text_bytes_too() -> None:
    raw = json.loads((CASSETTES / "plain-chat.json").read_text(encoding="utf-8"))
    chunk = raw["interactions"][2]["chunks"][3]
    chunk["data"] = base64.b64encode(chunk["data"].encode()).decode()
    chunk["encoding"] = "base64"
    VALIDATOR.validate(raw)
    loaded = g.cassette.Cassette.loads(json.dumps(raw))
    assert loaded == load_cassette(CASSETTES / "plain-chat.json")


# -- the schema ------------------------------------------------------------------------


def test_the_schema_is_a_valid_draft_2020_12_schema() -> None:
    Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"


@shipped
def test_shipped_cassette_validates_against_the_schema(path: Path) -> None:
    VALIDATOR.validate(json.loads(path.read_text(encoding="utf-8")))
    cassette = load_cassette(path)
    assert cassette.format_version == g.cassette.FORMAT_VERSION == 1
    assert cassette.redacted


# -- malformed cassettes -----------------------------------------------------------------


def _plain_chat() -> Raw:
    raw: Raw = json.loads((CASSETTES / "plain-chat.json").read_text(encoding="utf-8"))
    return raw


def _json_path(loader_path: str) -> str:
    """The loader's ``interactions[2].chunks[1].t`` as jsonschema's ``$.interactions[2]...``."""
    return "$." + loader_path.removeprefix("cassette.")


@pytest.mark.parametrize("mutation", MUTATIONS, ids=[m.name for m in MUTATIONS])
def test_malformed_cassette_is_refused_naming_the_field(mutation: Mutation) -> None:
    raw = _plain_chat()
    mutation.mutate(raw)
    text = json.dumps(raw, ensure_ascii=False)
    with pytest.raises(g.cassette.CassetteError) as info:
        g.cassette.Cassette.loads(text)
    message = str(info.value)
    for part in mutation.says:
        assert part in message, message
    assert message.startswith(mutation.says[0]), message
    errors = list(VALIDATOR.iter_errors(raw))
    if mutation.schema:
        # The schema rejects it too, at the same place (or one inside the other).
        assert errors, f"the schema accepts {mutation.name}"
        where = _json_path(mutation.says[0])
        assert any(
            where.startswith(error.json_path) or error.json_path.startswith(where)
            for error in errors
        ), [error.json_path for error in errors]
    else:
        assert not errors, [error.message for error in errors]


def test_non_json_text_is_refused() -> None:
    for text in ('{"format_version": 1,', b"\xff\xfe", "", "[1, 2"):
        with pytest.raises(g.cassette.CassetteError, match="invalid JSON"):
            g.cassette.Cassette.loads(text)
    with pytest.raises(g.cassette.CassetteError, match=r"^cassette: expected dict, got list"):
        g.cassette.Cassette.loads("[]")


def test_check_false_skips_only_the_reparse() -> None:
    raw = _plain_chat()
    edit_event_data(raw)
    cassette = g.cassette.Cassette.loads(json.dumps(raw), check=False)
    with pytest.raises(g.cassette.CassetteError, match=r"interactions\[2\]\.events"):
        cassette.check()


def test_load_cassette_names_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(g.cassette.CassetteError, match="cannot read the cassette"):
        load_cassette(tmp_path / "nope.json")


@pytest.mark.parametrize("mutation", AGREEMENT, ids=[m.name for m in AGREEMENT])
def test_loader_refuses_what_the_schema_refuses(mutation: Mutation) -> None:
    raw = _plain_chat()
    mutation.mutate(raw)
    assert list(VALIDATOR.iter_errors(raw)), "precondition: the schema refuses it"
    with pytest.raises(g.cassette.CassetteError) as info:
        g.cassette.Cassette.loads(json.dumps(raw, ensure_ascii=False))
    assert mutation.says[0] in str(info.value)


def test_the_schema_names_every_profile_and_a_profile_round_trips() -> None:
    assert sorted(SCHEMA["properties"]["profile"]["enum"]) == sorted(g.cassette.PROFILES)
    raw = _plain_chat()
    assert "profile" not in raw  # a format 1 file written before profiles: gptalk
    cassette = g.cassette.Cassette.loads(json.dumps(raw))
    assert cassette.profile == "gptalk"
    assert '"profile"' not in cassette.dumps()
    generic = dataclasses.replace(cassette, profile="generic")
    text = generic.dumps()
    assert '  "profile": "generic",' in text.splitlines()
    assert not list(VALIDATOR.iter_errors(json.loads(text)))
    assert g.cassette.Cassette.loads(text) == generic


# -- extend ------------------------------------------------------------------------------


def _times(cassette: g.cassette.Cassette) -> list[float]:
    out = []
    for item in cassette.interactions:
        out.append(item.request.t)
        out += [chunk.t for chunk in item.response.chunks]
    return out


@pytest.mark.parametrize("keep", [None, 2])
def test_extend_moves_the_new_steps_after_the_kept_ones(keep: int | None) -> None:
    first = load_cassette(CASSETTES / "503-then-retry.json")  # connections 1 and 2
    second = load_cassette(CASSETTES / "seven-chats.json")
    joined = first.extend(second, keep=keep)
    kept = first.interactions[:keep]
    assert joined.interactions[: len(kept)] == kept
    moved = joined.interactions[len(kept) :]
    assert len(moved) == len(second.interactions)
    kept_cassette = g.cassette.Cassette(kept, first.recorded_at, first.origin)
    offset = round(max(_times(kept_cassette)) + 0.001, 6)
    last_connection = max(item.connection for item in kept)
    for old, new in zip(second.interactions, moved, strict=True):
        assert new.connection == old.connection + last_connection
        assert new.request.t == pytest.approx(old.request.t + offset, abs=1e-6)
        assert new.request.method == old.request.method
        assert new.request.target == old.request.target
        assert new.request.headers == old.request.headers
        assert new.request.body == old.request.body
        assert [c.data for c in new.response.chunks] == [c.data for c in old.response.chunks]
        for old_chunk, new_chunk in zip(old.response.chunks, new.response.chunks, strict=True):
            assert new_chunk.t == pytest.approx(old_chunk.t + offset, abs=1e-6)
        assert new.response.events == old.response.events
        assert new.response.end == old.response.end
        assert (new.response.status, new.response.headers) == (
            old.response.status,
            old.response.headers,
        )
    # Everything new comes after everything kept, in time and connection numbers.
    assert min(_times(g.cassette.Cassette(moved, "", ""))) > max(_times(kept_cassette))
    assert min(item.connection for item in moved) > last_connection
    assert joined.recorded_at == first.recorded_at
    assert joined.origin == first.origin
    assert joined.redacted
    # The result is a valid cassette.
    assert g.cassette.Cassette.loads(joined.dumps()) == joined
    VALIDATOR.validate(json.loads(joined.dumps()))


def test_extend_with_an_unredacted_cassette_is_unredacted() -> None:
    first = load_cassette(CASSETTES / "plain-chat.json")
    second = load_cassette(CASSETTES / "rewrite.json")
    raw = g.cassette.Cassette(
        second.interactions, second.recorded_at, second.origin, redacted=False
    )
    assert not first.extend(raw).redacted
    assert first.extend(second).redacted
    # keep=0 keeps nothing: the other's steps start at offset 0.001.
    alone = first.extend(second, keep=0)
    assert alone.interactions[0].request.t == pytest.approx(
        second.interactions[0].request.t + 0.001, abs=1e-6
    )
    assert [item.connection for item in alone.interactions] == [
        item.connection for item in second.interactions
    ]
