"""``SSEParser(growing_tail=...)``: the decode-reuse hint changes no result.

The hint is protocol-neutral (GPTalk's client passes the length of its JSON's
closing ``"}``); whatever the stream, events, last event ID and retry equal
the reference parser's, and a stream of values that grow decodes only what is
new (checked by counting the bytes decoded).
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gptalk_proto import LocalProtocolError, SSEParser
from gptalk_proto.sse._growing import GrowingValues
from gptalk_proto.testing._reference_sse import reference_parse


def _line(draw: st.DrawFn, size: int) -> bytes:
    raw = draw(st.binary(min_size=size, max_size=size + 40))
    return raw.replace(b"\n", b"").replace(b"\r", b"")


@st.composite
def growing_streams(draw: st.DrawFn) -> tuple[bytes, int]:
    """Long data lines (past the parser's long-line threshold), each the
    previous one with arbitrary bytes inserted before its last ``tail`` bytes,
    so UTF-8 sequences get cut, completed and broken at the reuse boundary;
    sometimes a line that shares nothing, a short one, or a comment."""
    tail = draw(st.integers(1, 4))
    tails = [b'"}', b"\xc3\xa9", b"}\xe2", b"abcd", b'"\xf0', b"\xe2\x9c\x93\x22"]
    # Non-ASCII text, so the reuse is worth doing and runs.
    body = _line(draw, 60) + "caf\u00e9 \u2713".encode() * 300
    pieces = [b"data: " + body + draw(st.sampled_from(tails)) + b"\n\n"]
    for _ in range(draw(st.integers(1, 6))):
        previous = pieces[-1][6:-2]
        kind = draw(st.sampled_from(["grow", "grow", "grow", "other", "short", "comment"]))
        if kind == "grow" and previous:
            insert = _line(draw, 0)[:12]
            line = previous[: len(previous) - tail] + insert + previous[len(previous) - tail :]
        elif kind == "other":
            line = _line(draw, 2500)
        elif kind == "short":
            line = _line(draw, 5)
        else:
            pieces.append(b": keep-alive\n")
            continue
        pieces.append(b"data: " + line + b"\n\n")
    ends = draw(st.sampled_from([b"\n", b"\r\n", b"\r"]))
    return b"".join(pieces).replace(b"\n", ends), tail


@settings(max_examples=300, deadline=None)
@given(growing_streams(), st.data())
def test_growing_tail_matches_the_reference(case: tuple[bytes, int], data: st.DataObject) -> None:
    stream, tail = case
    expected, last_id, retry = reference_parse(stream)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    parser = SSEParser(growing_tail=tail)
    events = []
    start = 0
    for cut in [*cuts, len(stream)]:
        events += parser.feed(stream[start:cut])
        start = cut
    events += parser.close()
    assert events == expected
    assert parser.last_event_id == last_id
    assert parser.retry == retry


def test_a_growing_stream_decodes_only_what_is_new() -> None:
    text = "caf\u00e9 \u2713 " * 500
    lines = [f'data: {{"content": "{text[:n]}"}}\n\n'.encode() for n in range(3000, 3500, 10)]
    stream = b"".join(lines)
    plain, grown = SSEParser(), SSEParser(growing_tail=2)
    decoded = 0
    original = GrowingValues.decode

    def counting(self: GrowingValues, head: bytes, view: memoryview, start: int, stop: int) -> str:
        nonlocal decoded
        before = self._previous
        # The previous text, joined before decode() adds to its pieces.
        text = "".join(before[1]) if before else None
        value = original(self, head, view, start, stop)
        reused = before is not None and text is not None and value.startswith(text)
        decoded += stop - start - (len(before[0]) if before and reused else 0)
        return value

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(GrowingValues, "decode", counting)
        assert grown.feed(stream) == plain.feed(stream)
    # The first line whole, then about 10 characters (up to 3 bytes each) per line.
    assert decoded < len(lines[0]) + len(lines) * 40


@pytest.mark.parametrize("tail", [-1, 65])
def test_growing_tail_out_of_range_is_refused(tail: int) -> None:
    with pytest.raises(LocalProtocolError, match="growing_tail"):
        SSEParser(growing_tail=tail)
