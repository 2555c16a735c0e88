"""The event path's batch steps: a read of many events at once gives what the
events one by one give.

- ContentDecoder.decode_into: the TextDeltas of events whose text its
  shortcuts decode are built together later; a full decode (a rewrite, an
  object of other keys) must still come after them, with the text they added.
- ChunkedDecoder.feed: whole chunks are cut at the match of each one's CRLF and
  the next size line; the read's last chunk ends the read, or goes on as data
  of a chunk whose size line was read, or is the last chunk.
"""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

import gptalk_proto as g
from gptalk_proto._chunked import ChunkedDecoder

_TEXT = 'The quick brown fox; caf\u00e9 \u2713 "q" \\ \n' * 20


@st.composite
def content_datas(draw: st.DrawFn) -> list[str]:
    """Cumulative events (ASCII or raw JSON, either spelling of the key),
    now and then a rewrite, an object with another key, or the same text."""
    ascii_json = draw(st.booleans())
    sep = draw(st.sampled_from([":", ": "]))
    datas, size = [], 0
    for _ in range(draw(st.integers(1, 30))):
        kind = draw(st.sampled_from(["grow"] * 6 + ["rewrite", "other", "same"]))
        text = _TEXT[:size]
        if kind == "grow":
            size += draw(st.integers(1, 40))
            text = _TEXT[:size]
        elif kind == "rewrite":
            text = "rewritten " + _TEXT[: draw(st.integers(0, size))]
        body = json.dumps(text, ensure_ascii=ascii_json)
        data = '{"content"' + sep + body + "}"
        if kind == "other":
            data = '{"content"' + sep + body + ', "n": 1}'
        datas.append(data)
    return datas


def _one_by_one(datas: list[str]) -> tuple[list[object], str]:
    decoder = g.ContentDecoder()
    out: list[object] = []
    for data in datas:
        change = decoder.decode(data)
        if change is not None:
            out.append(change)
    return out, decoder.text


@settings(max_examples=300, deadline=None)
@given(content_datas(), st.data())
def test_decode_into_is_decode_per_event(datas: list[str], data: st.DataObject) -> None:
    expected = _one_by_one(datas)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(datas)), max_size=4)))
    decoder = g.ContentDecoder()
    out: list[object] = []
    start = 0
    for cut in [*cuts, len(datas)]:
        decoder.decode_into(datas[start:cut], out)
        start = max(start, cut)
    assert (out, decoder.text) == expected


def test_a_full_decode_after_shortcut_events_sees_their_text() -> None:
    # Two events the shortcut decodes, then one decoded in full (another
    # key): its change is computed from the text with theirs in it.
    datas = ['{"content": "ab"}', '{"content": "abcd"}', '{"content": "abcdef"}']
    datas.append('{"content": "abcdefgh", "n": 1}')
    datas.append('{"content": "xy"}')  # a rewrite, decoded in full
    out: list[object] = []
    decoder = g.ContentDecoder()
    decoder.decode_into(datas, out)
    assert out == [
        g.TextDelta("ab"),
        g.TextDelta("cd"),
        g.TextDelta("ef"),
        g.TextDelta("gh"),
        g.TextRewritten("xy", "abcdefgh"),
    ]
    assert decoder.text == "xy"


def _events(style: str, ends: str) -> list[bytes]:
    end = b"\r\n\r\n" if ends == "crlf" else b"\n\n"
    return [
        b"data: " + json.dumps({"content": _TEXT[:n]}, ensure_ascii=style == "ascii").encode() + end
        for n in range(7, 400, 13)
    ]


def _chunked(events: list[bytes]) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(e), e) for e in events) + b"0\r\n\r\nNEXT"


def _decode(stream: bytes, cuts: list[int]) -> tuple[bytes, ChunkedDecoder]:
    decoder = ChunkedDecoder()
    body, start = [], 0
    for cut in [*sorted(set(cuts)), len(stream)]:
        body.append(decoder.feed(stream[start:cut]))
        start = max(start, cut)
    return b"".join(body), decoder


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(["ascii", "raw"]),
    st.sampled_from(["lf", "crlf"]),
    st.lists(st.integers(0, 10**6), max_size=10),
)
def test_chunk_per_event_reads_at_random_splits(style: str, ends: str, cuts: list[int]) -> None:
    events = _events(style, ends)
    stream = _chunked(events)
    body, decoder = _decode(stream, [c % (len(stream) + 1) for c in cuts])
    assert body == b"".join(events)
    assert decoder.done
    assert decoder.leftover == b"NEXT"


def test_chunk_per_event_reads_whole_byte_by_byte_and_at_chunk_ends() -> None:
    for style in ("ascii", "raw"):
        for ends in ("lf", "crlf"):
            events = _events(style, ends)
            stream = _chunked(events)
            # Reads that end exactly after a chunk's CRLF (the common read),
            # right after a size line, inside a CRLF, and after the last chunk.
            at_ends, at = [], 0
            for e in events:
                head = len(b"%x\r\n" % len(e))
                at_ends += [at + head, at + head + len(e) + 1, at + head + len(e) + 2]
                at += head + len(e) + 2
            for cuts in ([], list(range(1, len(stream))), at_ends, at_ends[2::3], [at + 3]):
                body, decoder = _decode(stream, cuts)
                assert body == b"".join(events)
                assert decoder.done
                assert decoder.leftover == b"NEXT"
            # A read of whole chunks ending with one: all of their data.
            last = at_ends[2::3][-1]
            assert ChunkedDecoder().feed(stream[:last]) == b"".join(events)
