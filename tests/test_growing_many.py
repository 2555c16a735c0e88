"""``GrowingValues.decode_many``: the values of one chunk decoded in one call.

It must give what :meth:`GrowingValues.decode` gives called once per value, in
order, and leave the same state (the next value decodes the same); and the
parser paths that use it (a read of several long GPTalk events) must give the
reference events, whole, byte by byte and at random splits, LF and CRLF, with
ASCII-escaped and raw UTF-8 JSON.
"""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

import gptalk_proto as g
from gptalk_proto import SSEParser
from gptalk_proto.sse._growing import Extension, GrowingValues, whole
from gptalk_proto.testing._reference_sse import reference_parse


def _same(a: object, b: object) -> bool:
    # The same value and the same kind (Extension or text), field for field.
    if type(a) is not type(b):
        return False
    if isinstance(a, Extension) and isinstance(b, Extension):
        return a.text() == b.text() and (a.new, a.tail, a.count) == (b.new, b.tail, b.count)
    return a == b


@st.composite
def value_runs(draw: st.DrawFn) -> tuple[bytes, list[int], int]:
    """One buffer of long values (each the one before with bytes inserted
    before its last ``tail`` bytes, or one that shares nothing, or a short
    one), UTF-8 sequences cut at the boundaries; their spans."""
    tail = draw(st.integers(1, 3))
    tails = [b'"}', b"\xc3\xa9", b"}\xe2", b"abc", b'"\xf0']
    value = "caf\u00e9 \u2713".encode() * 400 + draw(st.sampled_from(tails))
    values = [value]
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(["grow", "grow", "grow", "grow", "other", "short"]))
        previous = values[-1]
        if kind == "grow":
            insert = draw(
                st.sampled_from([b"ab", b"\xc3", b"\xa9x", b"\xe2\x9c\x93", b"", b"\x80"])
            )
            values.append(
                previous[: len(previous) - tail] + insert + previous[len(previous) - tail :]
            )
        elif kind == "other":
            values.append(draw(st.binary(min_size=2100, max_size=2140)))
        else:
            values.append(draw(st.binary(min_size=1, max_size=8)))
    buf, spans = b"", list[int]()
    for v in values:
        spans += (len(buf) + 6, len(buf) + 6 + len(v))
        buf += b"data: " + v + b"\n\n"
    return buf, spans, tail


@settings(max_examples=300, deadline=None)
@given(value_runs(), st.booleans(), st.integers(0, 8))
def test_decode_many_is_decode_per_value(
    case: tuple[bytes, list[int], int], extend: bool, split: int
) -> None:
    buf, spans, tail = case
    one, many = GrowingValues(tail), GrowingValues(tail)
    if extend:
        one.hand_extensions()
        many.hand_extensions()
    view = memoryview(buf)
    pairs = list(zip(spans[::2], spans[1::2], strict=True))
    # Some values decoded alone first (state carried in), the rest in one call.
    split = min(split, len(pairs))
    expected = [one.decode(buf, view, start, stop) for start, stop in pairs]
    got = [many.decode(buf, view, start, stop) for start, stop in pairs[:split]]
    got += many.decode_many(buf, view, spans[2 * split :])
    assert len(got) == len(expected)
    assert all(_same(a, b) for a, b in zip(got, expected, strict=True))
    # The same state after: the last value again decodes the same way.
    start, stop = pairs[-1]
    assert _same(many.decode(buf, view, start, stop), one.decode(buf, view, start, stop))


def test_decode_many_hands_over_extensions() -> None:
    # The loop's own path runs (or the test above proves little about it).
    text = "caf\u00e9 \u2713 " * 400
    datas = [json.dumps({"content": text[:n]}).encode() for n in range(2500, 2600, 9)]
    buf, spans = b"", list[int]()
    for d in datas:
        spans += (len(buf) + 6, len(buf) + 6 + len(d))
        buf += b"data: " + d + b"\n\n"
    grower = GrowingValues(2)
    grower.hand_extensions()
    values = grower.decode_many(buf, memoryview(buf), spans)
    assert [whole(v) for v in values] == [d.decode() for d in datas]
    assert type(values[0]) is str
    assert {type(v) for v in values[1:]} == {Extension}  # type: ignore[comparison-overlap]


def _stream(style: str, ends: str, size: int = 6016, step: int = 32) -> tuple[bytes, str]:
    base = 'The quick brown fox; caf\u00e9 \u2713 "q" \\ \n'
    text = (base * (size // len(base) + 1))[:size]
    end = b"\r\n\r\n" if ends == "crlf" else b"\n\n"
    out = [
        b"data: " + json.dumps({"content": text[:n]}, ensure_ascii=style == "ascii").encode() + end
        for n in range(step, size + 1, step)
    ]
    # (size is a multiple of step: the last event holds all of text.)
    return b"".join(out) + b"data: [DONE]" + end, text


def _reply(stream: bytes, cuts: list[int]) -> tuple[str, list[g.SSEEvent]]:
    # As the chat does: each read's message data decoded in one call.
    parser = SSEParser(growing_tail=g.ContentDecoder.growing_tail)
    decoder = g.ContentDecoder()
    assert parser._grower is not None
    decoder.follow_extensions(parser._grower)
    out: list[object] = []
    events: list[g.SSEEvent] = []
    start = 0
    for cut in [*sorted(set(cuts)), len(stream)]:
        got = parser.feed(stream[start:cut])
        start = max(start, cut)
        events += got
        datas = [e.data for e in got if e.event == "message" and e.data != "[DONE]"]
        decoder.decode_into(datas, out)
    return decoder.text, events


@settings(max_examples=40, deadline=None)
@given(
    st.sampled_from(["ascii", "raw"]),
    st.sampled_from(["lf", "crlf"]),
    st.lists(st.integers(0, 400_000), max_size=12),
)
def test_gptalk_reads_at_random_splits(style: str, ends: str, cuts: list[int]) -> None:
    stream, text = _stream(style, ends)
    cuts = [c % (len(stream) + 1) for c in cuts]
    reply, events = _reply(stream, cuts)
    assert reply == text
    assert [e.data if type(e.data) is str else whole(e.data) for e in events] == [
        e.data for e in reference_parse(stream)[0]
    ]


def test_gptalk_reads_whole_and_byte_by_byte() -> None:
    for style in ("ascii", "raw"):
        for ends in ("lf", "crlf"):
            stream, text = _stream(style, ends, size=3008)
            expected = [e.data for e in reference_parse(stream)[0]]
            for cuts in ([], list(range(1, len(stream))), list(range(0, len(stream), 4096))):
                reply, events = _reply(stream, cuts)
                assert reply == text
                assert [whole(e.data) for e in events] == expected
            # Whole, the long values after the first come as Extensions.
            _, events = _reply(stream, [])
            assert any(type(e.data) is Extension for e in events)  # type: ignore[comparison-overlap]
