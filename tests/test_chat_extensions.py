"""The chat's own parser hands proven values over unjoined (``Extension``).

``ContentDecoder.follow_extensions`` makes the parser hand each long value it
proved extends the one before as what it added, not as its whole text: the
chat's content decoder needs no more.  Differential tests: the events, with
each Extension's text joined, equal the reference parser's, and the decoded
changes equal the plain decode, fed whole, byte by byte and at random cuts;
a parser not told this still hands over only ``str`` values.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gptalk_proto as g
import gptalk_proto._content as content_module
import gptalk_proto.sse._growing as growing_module
import gptalk_proto.sse._long as long_module
import gptalk_proto.sse._parser as parser_module
from gptalk_proto import SSEParser
from gptalk_proto.sse._growing import Extension, whole_data
from gptalk_proto.testing._reference_sse import reference_parse

from .test_body_path import _long_cumulative_datas, typed_stream
from .test_credentials_content import reference_changes
from .test_sse_growing import growing_streams


def _feed(parser: SSEParser, stream: bytes, cuts: list[int]) -> list[g.SSEEvent]:
    events: list[g.SSEEvent] = []
    start = 0
    for cut in [*sorted(c % (len(stream) + 1) for c in cuts), len(stream)]:
        events += parser.feed(stream[start:cut])
        start = max(start, cut)
    return events


def _extending_parser(tail: int) -> SSEParser:
    parser = SSEParser(growing_tail=tail)
    assert parser._grower is not None
    parser._grower.hand_extensions()
    return parser


@settings(max_examples=300, deadline=None)
@given(growing_streams(), st.lists(st.integers(0, 10**6), max_size=8))
def test_extensions_joined_are_the_reference_events(
    case: tuple[bytes, int], cuts: list[int]
) -> None:
    stream, tail = case
    expected, _, _ = reference_parse(stream)
    events = _feed(_extending_parser(tail), stream, cuts)
    assert [whole_data(event) for event in events] == expected
    # feed_values, the chat's own way: the same events, the run's as values.
    parser, by_values, start = _extending_parser(tail), [], 0
    for cut in [*sorted(c % (len(stream) + 1) for c in cuts), len(stream)]:
        before, values = parser.feed_values(stream[start:cut])
        last_id = parser.last_event_id
        by_values += before
        by_values += [tuple.__new__(g.SSEEvent, ("message", v, last_id, None)) for v in values]
        start = max(start, cut)
    assert [whole_data(event) for event in by_values] == expected
    # And a parser not told to hand them over gives only text.
    plain = _feed(SSEParser(growing_tail=tail), stream, cuts)
    assert plain == expected
    assert all(type(event.data) is str for event in plain)


def test_a_growing_stream_is_handed_over_as_extensions() -> None:
    # The shortcut runs (or the tests above prove nothing about it): fed
    # whole, every value after the first long one is an Extension, whose
    # text is the value.  Byte by byte, each line ends before its blank line
    # arrives: it goes into the data buffer, as text.
    text = "caf\u00e9 \u2713 " * 400
    datas = [json.dumps({"content": text[:n]}, ensure_ascii=False) for n in range(2500, 2600, 7)]
    stream = b"".join(b"data: " + d.encode() + b"\n\n" for d in datas)
    for pieces in ([stream], [stream[i : i + 1] for i in range(len(stream))]):
        parser = _extending_parser(2)
        events = [event for piece in pieces for event in parser.feed(piece)]
        assert [whole_data(e).data for e in events] == datas
        assert type(events[0].data) is str
        kinds = {type(e.data) for e in events[1:]}
        assert kinds == ({Extension} if len(pieces) == 1 else {str})


def test_a_multi_line_event_gets_text() -> None:
    # A long value that is one line of several goes into the data buffer as
    # text: the event's data is the lines joined, as the spec says.
    first = "\u2713" * 3000
    stream = f"data: {first}\n\ndata: {first}ab\ndata: second\n\n".encode()
    for cut in (len(stream), 3000, 9010, 9013):
        parser = _extending_parser(2)
        events = parser.feed(stream[:cut]) + parser.feed(stream[cut:])
        assert events == reference_parse(stream)[0]


def _changes_with_extensions(
    datas: list[str], typed: list[bool], cuts: list[int], ends: bytes
) -> list[object]:
    # As the chat does: each read's "message" events decoded in one call
    # (typed events skipped: the chain of values runs through them).
    stream = typed_stream(datas, typed).replace(b"\n", ends)
    parser = SSEParser(growing_tail=g.ContentDecoder.growing_tail)
    decoder = g.ContentDecoder()
    assert parser._grower is not None
    decoder.follow_extensions(parser._grower)
    out: list[object] = []
    start = 0
    for cut in [*sorted(c % (len(stream) + 1) for c in cuts), len(stream)]:
        events = parser.feed(stream[start:cut])
        start = max(start, cut)
        try:
            decoder.decode_into([e.data for e in events if e.event == "message"], out)
        except g.RemoteProtocolError:
            out.append("error")
            return out
    return out


@settings(max_examples=300, deadline=None)
@given(
    datas=_long_cumulative_datas(),
    cuts=st.lists(st.integers(0, 10**6), max_size=6),
    ends=st.sampled_from([b"\n", b"\r\n"]),
    data=st.data(),
)
def test_decoder_taking_extensions_equals_full_decode(
    datas: list[str], cuts: list[int], ends: bytes, data: st.DataObject
) -> None:
    typed = [data.draw(st.integers(0, 4)) == 0 for _ in datas]
    decoded = [
        d.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
        for d, kind in zip(datas, typed, strict=True)
        if not kind
    ]
    want = reference_changes(decoded)
    # (At an invalid event both stop, the batch with the changes before it.)
    assert _changes_with_extensions(datas, typed, cuts, ends) == want


@pytest.mark.parametrize(("links", "gap", "pieces"), [(1, 0, 1), (2, 3, 2), (128, 4096, 32)])
@settings(max_examples=100, deadline=None)
@given(datas=_long_cumulative_datas(), cuts=st.lists(st.integers(0, 10**6), max_size=6))
def test_extensions_with_any_caps_equal_full_decode(
    links: int, gap: int, pieces: int, datas: list[str], cuts: list[int]
) -> None:
    typed = [False] * len(datas)
    decoded = [d.encode("utf-8", "surrogatepass").decode("utf-8", "replace") for d in datas]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(growing_module, "MAX_LINKS", links)
        patch.setattr(growing_module, "_MAX_PIECES", pieces)
        patch.setattr(content_module, "_MAX_GAP", gap)
        got = _changes_with_extensions(datas, typed, cuts, b"\n")
    assert got == reference_changes(decoded)


def test_taken_extensions_keep_no_chain_alive() -> None:
    # Each Extension names the value before it; once the decoder took it,
    # that link is cut, so a long stream keeps no chain of old values alive.
    text = "caf\u00e9 \u2713 " * 400
    datas = [json.dumps({"content": text[:n]}, ensure_ascii=False) for n in range(2500, 2900, 3)]
    stream = b"".join(b"data: " + d.encode() + b"\n\n" for d in datas)
    parser = SSEParser(growing_tail=2)
    decoder = g.ContentDecoder()
    assert parser._grower is not None
    decoder.follow_extensions(parser._grower)
    out: list[object] = []
    taken: list[Extension] = []
    for start in range(0, len(stream), 5000):
        values = [e.data for e in parser.feed(stream[start : start + 5000])]
        # (typed str for the parser's sake: see GrowingValues.decode)
        given: list[object] = list(values)
        taken += [v for v in given if isinstance(v, Extension)]
        decoder.decode_into(values, out)
    assert len(taken) > 100
    assert all(e.before is None for e in taken)
    assert out == reference_changes(datas)


def test_an_extension_after_a_compared_event_needs_the_old_line() -> None:
    # An Extension whose piece does not decode alone (a low surrogate escape
    # opening it) goes the general way with its whole text.
    base = '{"content": "' + "caf\u00e9 \u2713 " * 400
    datas = [base + '\\ud83d"}', base + '\\ud83d\\ude00"}', base + '\\ud83d\\ude00x"}']
    assert _changes_with_extensions(datas, [False] * 3, [], b"\n") == reference_changes(datas)


# -- the chat: its deltas, and the events an error carries ------------------------

_HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"


def _gptalk_stream(texts: list[str]) -> bytes:
    events = [
        b"data: %s\n\n" % json.dumps({"content": t}, ensure_ascii=False).encode() for t in texts
    ]
    events.append(b"data: [DONE]\n\n")
    return _HEAD + b"".join(b"%x\r\n%s\r\n" % (len(e), e) for e in events) + b"0\r\n\r\n"


def _run_chat(chat: g.Chat, stream: bytes, reads: list[bytes]) -> list[object]:
    login = json.dumps({"code": 0, "data": {"token": "t" * 32, "expires_at": 4102444800}})
    text = json.dumps({"code": 0, "data": {"token": "stream-token"}})

    def response(body: str) -> bytes:
        return b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body.encode())

    conn = g.ClientConnection(chat, host="x")
    pending: list[bytes] = []
    seen: list[object] = []
    while True:
        try:
            got = conn.next_event()
        except g.GPTalkError as exc:
            seen.append(exc)
            return seen
        if got is g.NEED_DATA:
            conn.receive_data(pending.pop(0) if pending else b"")
        elif got is g.SEND_REQUEST:
            request = conn.send(now=1_700_000_000)
            line = request[: request.index(b"\r\n")]
            if b"/login" in line:
                pending.append(response(login))
            elif b"/text" in line:
                pending.append(response(text))
            else:
                pending += reads
        elif got is g.PAUSED:
            return seen
        else:
            seen.append(got)


_REPLY = ('caf\u00e9 \u2713 "q" \\ \n' * 300)[:3000]


@settings(max_examples=40, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 40), min_size=1, max_size=12),
    cuts=st.lists(st.integers(0, 10**6), max_size=10),
)
def test_chat_deltas_at_any_reads(sizes: list[int], cuts: list[int]) -> None:
    texts, end = [], 2500
    for size in sizes:
        end = min(end + size, len(_REPLY))
        texts.append(_REPLY[:end])
    stream = _gptalk_stream(texts)
    bounds = [0, *sorted(c % (len(stream) + 1) for c in cuts), len(stream)]
    reads = [stream[a:b] for a, b in itertools.pairwise(bounds) if b > a]
    seen = _run_chat(g.Chat("hi", credentials=g.Credentials(), fingerprint="0" * 32), stream, reads)
    deltas = [e.text for e in seen if type(e) is g.TextDelta]
    assert "".join(deltas) == texts[-1]
    assert seen[-1] == g.ChatDone(texts[-1])


def test_a_chat_builds_no_event_for_its_runs_of_plain_messages(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The parser hands the chat each read's last run of plain messages as its
    # data alone (feed_values): no event is built for them, at any read size.
    # (Only the read that ends the reply builds some: [DONE] is a short line
    # after the long ones, the run is not its read's last.)
    built: list[str] = []

    def counting(module: str, name: str) -> None:
        original = getattr(module_objects[module], name)

        def count(*args: object) -> object:
            built.append(name)
            return original(*args)

        monkeypatch.setattr(module_objects[module], name, count)

    module_objects = {"_long": long_module, "_parser": parser_module}
    for module, name in (("_long", "_message_list"), ("_parser", "_message_events")):
        counting(module, name)
    counting("_parser", "_events")
    texts = [_REPLY[:n] for n in range(2500, 3000, 4)]
    stream = _gptalk_stream(texts)
    for size in (32768, 8192, 2048):
        built.clear()
        reads = [stream[i : i + size] for i in range(0, len(stream), size)]
        chat = g.Chat("hi", credentials=g.Credentials(), fingerprint="0" * 32)
        seen = _run_chat(chat, stream, reads)
        assert "".join(e.text for e in seen if type(e) is g.TextDelta) == texts[-1]
        assert len(reads) > 10
        assert len(built) <= 2, (size, built)
    # (The counts see the events plain feeds build.)
    built.clear()
    SSEParser(growing_tail=2).feed(b"".join(b"data: %d%s\n\n" % (n, b"x" * 3000) for n in range(3)))
    SSEParser().feed(b"data: a\n\ndata: b\n\n")
    assert "_message_list" in built
    assert "_events" in built


def test_chat_deltas_fed_byte_by_byte(make_chat: Callable[..., g.Chat]) -> None:
    texts = [_REPLY[:n] for n in range(2500, 2600, 9)]
    stream = _gptalk_stream(texts)
    for reads in ([stream], [stream[i : i + 1] for i in range(len(stream))]):
        seen = _run_chat(make_chat(credentials=g.Credentials()), stream, reads)
        deltas = [e.text for e in seen if type(e) is g.TextDelta]
        assert deltas[0] == texts[0]
        assert deltas[1:] == [b[len(a) :] for a, b in itertools.pairwise(texts)]
        assert seen[-1] == g.ChatDone(texts[-1])


def test_a_size_error_carries_whole_events(make_chat: Callable[..., g.Chat]) -> None:
    # The events before a line over the cap reach the caller on the error,
    # each with its whole data (not the chat's Extensions).
    texts = [_REPLY[:n] for n in range(2500, 2600, 9)]
    stream = _gptalk_stream([*texts, _REPLY * 4])
    chat = make_chat(credentials=g.Credentials(), max_line_size=9000)
    seen = _run_chat(chat, stream, [stream])
    error = seen[-1]
    assert isinstance(error, g.SSESizeError)
    datas = [json.dumps({"content": t}, ensure_ascii=False) for t in texts]
    assert [e.data for e in error.events] == datas
