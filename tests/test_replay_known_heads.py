"""Known heads: a request head that matched a step once is not read and
matched again on later replays of the cassette, and that changes no outcome.

Each outcome here is compared with the one a freshly loaded cassette gives
(nothing known), write for write: the steps played, or the same error with
the same differences.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gptalk_proto as g
import gptalk_proto.cassette
from gptalk_proto.cassette._records import RecordedRequest
from gptalk_proto.cassette._replay import MAX_KNOWN_HEADS
from gptalk_proto.cassette._request_reader import RequestReader
from gptalk_transports._cassettes import load_cassette
from gptalk_transports._session import replay_session

from .replay_cases import (
    CASSETTES,
    anyio_backend,  # noqa: F401 (a fixture: the anyio tests run on asyncio and trio)
)

PLAIN = CASSETTES / "plain-chat.json"


def fresh() -> g.cassette.Cassette:
    """plain-chat.json as loaded: no head known yet."""
    return load_cassette(PLAIN)


def wire(
    request: RecordedRequest,
    body: bytes | None = None,
    *,
    timestamp: str | None = None,
    extra: Sequence[tuple[str, str]] = (),
) -> bytes:
    """The request as a client writes it (``body`` and ``timestamp`` changed,
    ``extra`` headers added); its content-length follows the body."""
    body = request.body if body is None else body
    lines = [f"{request.method} {request.target} HTTP/1.1"]
    for name, recorded in request.headers:
        value = recorded
        if name == "content-length":
            value = str(len(body))
        elif name == "x-auth-timestamp" and timestamp is not None:
            value = timestamp
        lines.append(f"{name}: {value}")
    lines += [f"{name}: {value}" for name, value in extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def login_body(fingerprint: str) -> bytes:
    return json.dumps({"fingerprint": fingerprint, "platform": "fingerprint"}).encode()


def outcome(
    cassette: g.cassette.Cassette,
    writes: Sequence[bytes],
    profile: g.cassette.Profile | None = None,
) -> object:
    """What one connection makes of ``writes``: the steps played, or the error."""
    replayer = g.cassette.Replayer(cassette, profile)
    connection = replayer.connection()
    try:
        for data in writes:
            connection.receive(data)
    except g.cassette.CassetteError as error:
        return type(error), str(error), getattr(error, "differences", None), replayer.played
    return replayer.played


def plain_writes(cassette: g.cassette.Cassette) -> list[bytes]:
    """login (a fingerprint of its own), text and stream, as recorded."""
    login, text, stream = (item.request for item in cassette.interactions)
    return [wire(login, login_body("a" * 32)), wire(text), wire(stream)]


def known(cassette: g.cassette.Cassette) -> list[int]:
    return [len(item.request._known_heads) for item in cassette.interactions]


def test_a_matched_head_is_known_and_plays_the_same_again() -> None:
    warm = fresh()
    writes = plain_writes(warm)
    assert known(warm) == [0, 0, 0]
    assert outcome(warm, writes) == 3
    assert known(warm) == [1, 1, 1]
    # Again, known this time, with another fingerprint (bound afresh per replay).
    again = [wire(warm.interactions[0].request, login_body("b" * 32)), *writes[1:]]
    assert outcome(warm, again) == outcome(fresh(), again) == 3
    assert known(warm) == [1, 1, 1]


def _variants(cassette: g.cassette.Cassette) -> list[list[bytes]]:
    login, text, stream = (item.request for item in cassette.interactions)
    fields = text.json()
    prompt = fields["content"]
    same_length = json.dumps({**fields, "content": prompt.swapcase()}).encode()
    assert len(same_length) == len(text.body)
    ok = wire(login, login_body("c" * 32))
    return [
        [ok, wire(text, same_length)],  # a known head, another prompt
        [ok, wire(text, json.dumps({**fields, "model": "gpt-4"}).encode())],  # another length
        [ok, wire(text, b"x" * len(text.body))],  # not JSON
        [ok, wire(text, text.body.replace(b"{", b"[", 1))],
        [wire(login, b"{}" + b" " * 76), wire(text)],  # the fingerprint missing
        [ok, wire(text), wire(text)],  # the text again where the stream was recorded
        [ok, wire(text), wire(stream), wire(stream)],  # past the end
        [wire(text)],  # the text first
        [ok, wire(text), wire(stream, extra=[("x-extra", "1")])],
    ]


def test_a_known_head_with_another_body_fails_as_an_unknown_one_does() -> None:
    warm = fresh()
    outcome(warm, plain_writes(warm))
    for writes in _variants(warm):
        assert outcome(warm, writes) == outcome(fresh(), writes)


def test_a_binding_holds_across_known_heads() -> None:
    plain = fresh()
    login = plain.interactions[0]
    twice = g.cassette.Cassette((login, login), plain.recorded_at, plain.origin)
    first = wire(login.request, login_body("a" * 32))
    assert outcome(twice, [first, first]) == 2
    assert known(twice) == [1, 1]  # (one request, twice in the cassette)
    other = wire(login.request, login_body("b" * 32))
    result = outcome(twice, [first, other])
    assert result == outcome(g.cassette.Cassette((login, login), "", plain.origin), [first, other])
    assert isinstance(result, tuple)
    assert result[2] == ["body.fingerprint: bound to an earlier value, sent another"]


def test_a_head_is_known_only_under_the_profile_it_matched_under() -> None:
    warm = fresh()
    login = warm.interactions[0].request
    # The generic profile compares no headers: this head matches under it only.
    extra = wire(login, login_body("a" * 32), extra=[("x-extra", "1")])
    assert outcome(warm, [extra], g.cassette.GENERIC) == 1
    assert known(warm)[0] == 1
    expected = outcome(fresh(), [extra])
    assert isinstance(expected, tuple)
    assert expected[2] == ["header x-extra: not recorded, sent '1'"]
    assert outcome(warm, [extra]) == expected
    # A profile made anew (even an equal one) is another profile.
    assert outcome(warm, [extra], g.cassette.GPTALK.with_volatile([])) == expected


def test_known_heads_are_capped() -> None:
    warm = fresh()
    login = warm.interactions[0].request
    for second in range(MAX_KNOWN_HEADS + 3):
        # x-auth-timestamp is never compared: every one of these heads matches.
        data = wire(login, login_body("a" * 32), timestamp=str(1796192930 + second))
        assert outcome(warm, [data]) == 1
    assert known(warm)[0] == MAX_KNOWN_HEADS


def test_only_a_request_whole_in_one_write_is_known() -> None:
    warm = fresh()
    login, text, stream = plain_writes(warm)
    cut = len(login) - 10
    assert outcome(warm, [login[:cut], login[cut:], text + stream]) == 3
    assert known(warm) == [0, 0, 0]  # cut across writes, or two in one write
    assert outcome(warm, [login, text, stream]) == 3
    assert known(warm) == [1, 1, 1]
    # A known head, then its body in the next write: read as any cut request.
    head = text.index(b"\r\n\r\n") + 4
    writes = [login, text[:head], text[head:], stream]
    assert outcome(warm, writes) == outcome(fresh(), writes) == 3


def test_the_reader_answers_whole_only_for_one_whole_plain_request() -> None:
    login, text, _ = plain_writes(fresh())
    reader = RequestReader(4096)
    request = reader.whole(login)
    assert request is not None
    assert request.body == login_body("a" * 32)
    assert request.head.method == b"POST"
    for data in (login[:-1], login + text, login.replace(b"\r\n", b"\n"), b""):
        assert reader.whole(data) is None
    assert bool(reader.fresh)  # (bool(): mypy would take it for True below)
    reader.feed(login[:10])
    assert not reader.fresh
    assert reader.whole(login) is None  # bytes held: feed reads on
    assert [r.body for r in reader.feed(login[10:])] == [login_body("a" * 32)]
    assert reader.fresh


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_any_body_under_a_known_head_fails_or_plays_as_under_an_unknown_one(
    data: st.DataObject,
) -> None:
    warm = _warm()
    login, text, stream = plain_writes(warm)
    head = text.index(b"\r\n\r\n") + 4
    body = bytearray(text[head:])
    # Bytes of the body changed in place: the head (its length too) stays known.
    for _ in range(data.draw(st.integers(0, 4))):
        at = data.draw(st.integers(0, len(body) - 1))
        body[at] = data.draw(st.sampled_from(b'"{}[],:0a\\ '))
    writes = [login, text[:head] + bytes(body), stream]
    assert outcome(warm, writes) == outcome(fresh(), writes)


_WARM: list[g.cassette.Cassette] = []


def _warm() -> g.cassette.Cassette:
    # One cassette whose heads are known, for every example.
    if not _WARM:
        cassette = fresh()
        outcome(cassette, plain_writes(cassette))
        _WARM.append(cassette)
    return _WARM[0]


@pytest.mark.anyio
async def test_a_second_replay_reads_no_request(monkeypatch: pytest.MonkeyPatch) -> None:
    cassette = fresh()
    first = await replay_session(cassette)
    reads: list[bytes] = []
    whole = RequestReader.whole

    def counted(self: RequestReader, data: bytes) -> object:
        reads.append(data)
        return whole(self, data)

    monkeypatch.setattr(RequestReader, "whole", counted)
    assert await replay_session(cassette) == first
    assert reads == []
    assert known(cassette) == [1, 1, 1]
