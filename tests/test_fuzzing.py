"""The fuzzing kit users get: the shipped strategies, the scripted server and
the atheris harness, each held to what it promises.

* Strategies with a known answer (``sse_streams``, ``gptalk_exchanges``) are
  checked against the parser, the reference parser and the client machine.
* The client machine, fed arbitrary and mutated server bytes at arbitrary
  splits, ends in a typed error or a reply whose events add up, and the
  outcome does not depend on the splits.
* The server machine, fed arbitrary, hostile and mutated request bytes at
  arbitrary splits, answers each request or closes, never raises.
* The harness functions find planted bugs, and a short atheris session of
  each target runs clean.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gptalk_proto import (
    Chat,
    ChatDone,
    ClientConnection,
    Credentials,
    GPTalkError,
    SSEParser,
    TextDelta,
    TextRewritten,
)
from gptalk_proto.server import ServerConnection, Service
from gptalk_proto.testing import check_reply, fuzz, http_response, play_responses
from gptalk_proto.testing._reference_sse import reference_parse
from gptalk_proto.testing.strategies import (
    EncodedStream,
    ScriptedExchange,
    chunkings,
    gptalk_exchanges,
    gptalk_raw_exchanges,
    gptalk_requests,
    sse_encodings,
    sse_event_lists,
    sse_streams,
)

FINGERPRINT = "0123456789abcdef" * 2


def connection() -> ClientConnection:
    chat = Chat("hi", credentials=Credentials(), fingerprint=FINGERPRINT)
    return ClientConnection(chat, host="gptalk.test")


def parse(chunks: list[bytes]) -> tuple[list[object], str, int | None]:
    parser = SSEParser()
    events: list[object] = []
    for chunk in chunks:
        events += parser.feed(chunk)
    assert parser.close() == []
    return events, parser.last_event_id, parser.retry


# -- SSE strategies ----------------------------------------------------------------------


@settings(max_examples=500, deadline=None)
@given(stream=sse_streams(), data=st.data())
def test_sse_streams_parse_to_their_events(stream: EncodedStream, data: st.DataObject) -> None:
    want = (list(stream.events), stream.last_event_id, stream.retry)
    assert parse(data.draw(chunkings(stream.data), label="chunks")) == want
    assert reference_parse(stream.data) == want


@settings(max_examples=300, deadline=None)
@given(
    stream=sse_event_lists(min_size=1).flatmap(
        lambda events: sse_encodings(events, comments=False, noise=False, incomplete_tail=True)
    ),
)
def test_an_incomplete_tail_is_never_dispatched(stream: EncodedStream) -> None:
    assert parse([stream.data]) == (list(stream.events), stream.last_event_id, stream.retry)


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=300), allow_empty=st.booleans(), draw=st.data())
def test_chunkings_join_back(data: bytes, allow_empty: bool, draw: st.DataObject) -> None:
    chunks = draw.draw(chunkings(data, allow_empty=allow_empty))
    assert b"".join(chunks) == data
    assert allow_empty or all(chunks)


def test_the_encodings_vary() -> None:
    # The strategies are only as good as their spread: every line end, the
    # BOM, comments and field-order changes all show up.  Derandomized: a
    # spread check must not be flaky.
    seen: set[str] = set()

    @settings(max_examples=300, deadline=None, derandomize=True, database=None)
    @given(stream=sse_streams())
    def collect(stream: EncodedStream) -> None:
        raw = stream.data
        for name, present in {
            "crlf": b"\r\n" in raw,
            "cr": b"\r" in raw.replace(b"\r\n", b""),
            "lf": b"\n" in raw.replace(b"\r\n", b""),
            "bom": raw.startswith(b"\xef\xbb\xbf"),
            "comment": b"\n:" in raw or b"\r:" in raw,
            "no-space": b"data:" in raw and b"data: " not in raw,
            "typed": any(event.event != "message" for event in stream.events),
            "retry": stream.retry is not None,
            "multi-line": any("\n" in event.data for event in stream.events),
        }.items():
            if present:
                seen.add(name)

    collect()
    assert seen == {
        "crlf", "cr", "lf", "bom", "comment", "no-space", "typed", "retry", "multi-line"
    }  # fmt: skip


# -- GPTalk strategies and the client machine -----------------------------------------------


def chunked_responses(data: st.DataObject, responses: tuple[bytes, ...]) -> list[list[bytes]]:
    return [data.draw(chunkings(response), label="chunks") for response in responses]


@settings(max_examples=300, deadline=None)
@given(exchange=gptalk_exchanges(faulty=False), data=st.data())
def test_a_valid_exchange_gives_its_reply(exchange: ScriptedExchange, data: st.DataObject) -> None:
    played = play_responses(connection(), chunked_responses(data, exchange.responses))
    assert played.error is None
    assert check_reply(played.events) == exchange.reply
    assert len(played.requests) == 3


@settings(max_examples=500, deadline=None)
@given(exchange=gptalk_exchanges(faulty=True), data=st.data())
def test_a_fault_gives_its_error(exchange: ScriptedExchange, data: st.DataObject) -> None:
    played = play_responses(connection(), chunked_responses(data, exchange.responses))
    if exchange.error is None:  # a rewrite: not an error
        assert played.error is None, exchange.fault
        assert check_reply(played.events) == exchange.reply
    else:
        assert isinstance(played.error, exchange.error), (exchange.fault, played.error)


def test_every_fault_is_drawn() -> None:
    # Derandomized, as the spread check above.
    faults: set[str] = set()

    @settings(max_examples=800, deadline=None, derandomize=True, database=None)
    @given(exchange=gptalk_exchanges(faulty=True))
    def collect(exchange: ScriptedExchange) -> None:
        faults.add(exchange.fault.split(" on ")[0].split(" ")[0])

    collect()
    assert {"status", "quota", "expired", "invalid", "bad-request", "internal"} <= faults
    assert {"closed", "bad-http", "not-json", "no-token"} <= faults
    assert {"cut", "no-done", "malformed", "no-content", "rewrite"} <= faults


@settings(max_examples=1000, deadline=None)
@given(responses=gptalk_raw_exchanges(), data=st.data())
def test_arbitrary_server_bytes_end_in_a_typed_error_or_a_valid_reply(
    responses: tuple[bytes, ...], data: st.DataObject
) -> None:
    # play_responses lets anything but a GPTalkError propagate, and fails a
    # machine that waits for bytes after EOF.
    whole = play_responses(connection(), responses)
    if whole.error is None:
        check_reply(whole.events)
    else:
        assert isinstance(whole.error, GPTalkError)
        assert str(whole.error)
    split = play_responses(connection(), chunked_responses(data, responses))
    assert (split.events, type(split.error)) == (whole.events, type(whole.error))


def test_requests_beyond_the_script_meet_a_closed_connection() -> None:
    login = http_response(200, b'{"data": {"token": "t", "expires_at": 1800000000}}')
    played = play_responses(connection(), [login])
    assert isinstance(played.error, GPTalkError)
    assert "text request" in str(played.error)
    assert len(played.requests) == 2


@pytest.mark.parametrize(
    ("events", "problem"),
    [
        ([TextDelta("a")], "no ChatDone"),
        ([TextDelta("a"), ChatDone("b")], "ChatDone.text"),
        ([TextDelta("a"), TextRewritten("b", previous="x"), ChatDone("b")], "previous"),
        ([TextDelta("a"), TextRewritten("ab", previous="a"), ChatDone("ab")], "only extends"),
        ([ChatDone(""), TextDelta("a")], "after ChatDone"),
        ([TextDelta(""), ChatDone("")], "empty"),
    ],
)
def test_check_reply_catches_inconsistent_events(events: list[object], problem: str) -> None:
    with pytest.raises(AssertionError, match=problem):
        check_reply(events)  # type: ignore[arg-type]


# -- GPTalk requests and the server machine ------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(raw=gptalk_requests(), head=st.integers(0, 255))
def test_the_server_machine_answers_any_request_bytes(raw: bytes, head: int) -> None:
    # check_server: a response with a status line for each request, or a
    # close; no other exception, no endless response, no wait after EOF; the
    # held prompts under their caps; the same statuses at any splits.
    fuzz.check_server(bytes([head]) + raw)


def test_the_requests_reach_every_answer() -> None:
    # Derandomized, as the spread checks above: a chat reaches its stream,
    # hostile requests their refusals, small caps their 413 and 503.
    seen: set[object] = set()

    @settings(max_examples=300, deadline=None, derandomize=True, database=None)
    @given(raw=gptalk_requests(), caps=st.integers(0, 15))
    def collect(raw: bytes, caps: int) -> None:
        served = fuzz._serve(caps, [raw])
        seen.update(served.statuses)
        seen.update("stream" for r in served.responses if b"text/event-stream" in r)
        seen.update("deep" for r in served.responses if b"nested deeper" in r)
        seen.update("head" for r in served.responses if r.endswith(b"\r\n\r\n"))

    collect()
    assert {200, 400, 404, 405, 413, 503, "stream", "deep", "head"} <= seen


def test_check_server_finds_an_untyped_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self: Service, *args: object, **kwargs: object) -> None:
        raise ValueError("Invalid IPv6 URL")  # what a bad target did before

    monkeypatch.setattr(Service, "handle", broken)
    with pytest.raises(ValueError, match="IPv6"):
        fuzz.check_server(fuzz.seeds("server")[0])


def test_check_server_finds_a_machine_that_hangs(monkeypatch: pytest.MonkeyPatch) -> None:
    real = ServerConnection.receive_data

    def deaf(self: ServerConnection, data: bytes) -> None:
        if data:
            real(self, data)

    monkeypatch.setattr(ServerConnection, "receive_data", deaf)
    with pytest.raises(AssertionError, match="after EOF"):
        fuzz.check_server(b"\x00GET / HTTP/1.1\r\n")


# -- the atheris harness -------------------------------------------------------------------


@pytest.mark.parametrize("target", sorted(fuzz.TARGETS))
def test_the_seeds_pass(target: str) -> None:
    for seed in fuzz.seeds(target):
        fuzz.TARGETS[target](seed)


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=300))
def test_check_sse_holds_on_arbitrary_input(data: bytes) -> None:
    fuzz.check_sse(data)


@settings(max_examples=200, deadline=None)
@given(responses=gptalk_raw_exchanges(), head=st.integers(0, 255))
def test_check_client_holds_on_server_bytes(responses: tuple[bytes, ...], head: int) -> None:
    fuzz.check_client(bytes([head]) + fuzz.SEPARATOR.join(responses))


def test_check_sse_finds_a_chunking_bug(monkeypatch: pytest.MonkeyPatch) -> None:
    # A planted bug: a parser that loses events completed by a one-byte chunk.
    real_feed = SSEParser.feed

    def lossy_feed(self: SSEParser, data: bytes) -> list[object]:
        events = real_feed(self, data)
        return [] if len(data) == 1 else events  # type: ignore[return-value]

    monkeypatch.setattr(SSEParser, "feed", lossy_feed)
    with pytest.raises(AssertionError, match="differs"):
        fuzz.check_sse(b"\x00\x00data: a\n\n")


def test_check_client_finds_a_machine_that_hangs(monkeypatch: pytest.MonkeyPatch) -> None:
    # A planted bug: a connection that does not notice the server closing.
    real = ClientConnection.receive_data

    def deaf(self: ClientConnection, data: bytes) -> None:
        if data:
            real(self, data)

    monkeypatch.setattr(ClientConnection, "receive_data", deaf)
    login = http_response(200, b'{"data": {"token": "t", "expires_at": 1800000000}}')
    with pytest.raises(AssertionError, match="after EOF"):
        fuzz.check_client(b"\x00" + login[:20])


def test_check_client_finds_an_untyped_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self: Chat, data: bytes) -> None:
        raise KeyError("data")  # what the original client's users saw

    monkeypatch.setattr(Chat, "receive_body", broken)
    with pytest.raises(KeyError):
        fuzz.check_client(fuzz.seeds("client")[0])


def test_an_unknown_target_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert fuzz.main(["nothing"]) == 2
    assert "usage:" in capsys.readouterr().err


@pytest.mark.parametrize("target", sorted(fuzz.TARGETS))
def test_a_short_atheris_session(target: str, tmp_path: Path) -> None:
    pytest.importorskip("atheris", reason="atheris (the fuzz extra) is not installed")
    corpus = tmp_path / "corpus"
    result = subprocess.run(
        [sys.executable, "-m", "gptalk_proto.testing.fuzz", target, "-runs=3000", str(corpus)],
        capture_output=True,
        text=True,
        timeout=100,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Done 3000 runs" in result.stderr
    # The corpus started from the seeds.
    assert len(list(corpus.iterdir())) >= len(fuzz.seeds(target))
