"""Hypothesis properties of SSEParser and the encoder.

1. Round trip: any events, encoded with any line ends and comments between
   them, come back from the parser however the bytes are chunked.
2. Robustness: for any bytes, only RemoteProtocolError subclasses escape, and
   a failed parser stays failed.
3. Chunking independence: events, last event ID, retry and the error class (if
   any) never depend on where the stream was cut, caps included.
4. Differential: the parser agrees with the reference parser
   (``gptalk_proto.testing._reference_sse``) on arbitrary bytes and on
   streams built from a grammar of SSE-like lines.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from gptalk_proto import RemoteProtocolError, SSEEvent, SSEParser, encode_event
from gptalk_proto.sse import encode_comment
from gptalk_proto.testing._reference_sse import reference_parse
from gptalk_proto.testing.strategies import chunkings, sse_like_bytes

from .sse_cases import feed_all, outcome

NEWLINES = ["\n", "\r\n", "\r"]

# -- strategies ------------------------------------------------------------------------
# The shipped ones (gptalk_proto.testing.strategies), and a few for caps and
# the encoder's inputs.

any_streams = sse_like_bytes()


def chunked(stream: bytes) -> st.SearchStrategy[list[bytes]]:
    # Empty chunks too: feed(b"") must change nothing.
    return chunkings(stream, allow_empty=True)


# Small caps, so that size errors happen; {}: the defaults.
caps: st.SearchStrategy[dict[str, Any]] = st.one_of(
    st.just({}),
    st.fixed_dictionaries(
        {"max_line_size": st.integers(1, 48), "max_event_size": st.integers(1, 16)}
    ),
    st.fixed_dictionaries({"max_line_size": st.integers(1, 32)}),
    st.fixed_dictionaries({"max_event_size": st.integers(1, 16)}),
)

# What encode_event accepts: no CR in data, no CR/LF in event, no CR/LF/NUL in
# id, and no lone surrogates (codec="utf-8").
data_texts = st.text(st.characters(codec="utf-8", exclude_characters="\r"), max_size=20)
type_texts = st.text(st.characters(codec="utf-8", exclude_characters="\r\n"), max_size=10)
id_texts = st.text(st.characters(codec="utf-8", exclude_characters="\r\n\x00"), max_size=10)
comment_texts = st.text(st.characters(codec="utf-8", exclude_characters="\r\n"), max_size=10)
retries = st.integers(0, 10**12)
encodable_events = st.tuples(
    data_texts,
    st.none() | type_texts,
    st.none() | id_texts,
    st.none() | retries,
    st.sampled_from(NEWLINES),
    st.none() | comment_texts,
)

# -- 1. round trip ----------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    specs=st.lists(encodable_events, max_size=6),
    trailer=st.none() | comment_texts,
    data=st.data(),
)
def test_round_trip(
    specs: list[tuple[str, str | None, str | None, int | None, str, str | None]],
    trailer: str | None,
    data: st.DataObject,
) -> None:
    parts: list[bytes] = []
    expected: list[SSEEvent] = []
    last_id = ""
    last_retry: int | None = None
    for text, event, id_, retry, newline, comment in specs:
        if comment is not None:
            parts.append(encode_comment(comment, newline=newline))
        parts.append(encode_event(text, event=event, id=id_, retry=retry, newline=newline))
        # spec: the last event ID buffer "does not get reset": an event without
        # an id carries the one before it.
        if id_ is not None:
            last_id = id_
        if retry is not None:
            last_retry = retry
        # An empty (or absent) event type dispatches as "message".
        expected.append(SSEEvent(event or "message", text, last_id, retry))
    if trailer is not None:
        parts.append(encode_comment(trailer))
    stream = b"".join(parts)
    want = (expected, last_id, last_retry)
    assert feed_all(data.draw(chunked(stream), label="chunks")) == want
    assert reference_parse(stream) == want


# -- 2. robustness ------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(stream=any_streams, limits=caps, data=st.data())
def test_only_remote_protocol_errors_escape(
    stream: bytes, limits: dict[str, Any], data: st.DataObject
) -> None:
    parser = SSEParser(**limits)
    try:
        for chunk in data.draw(chunked(stream), label="chunks"):
            parser.feed(chunk)
    except RemoteProtocolError:
        # Failed for good: any further feed raises RemoteProtocolError.
        for again in (b"data: x\n\n", b""):
            try:
                parser.feed(again)
            except RemoteProtocolError:
                pass
            else:
                raise AssertionError(f"feed({again!r}) after an error did not raise")
    else:
        assert parser.close() == []


# -- 3. chunking independence -----------------------------------------------------------


@settings(max_examples=1000, deadline=None)
@given(stream=any_streams, limits=caps, data=st.data())
def test_result_does_not_depend_on_chunking(
    stream: bytes, limits: dict[str, Any], data: st.DataObject
) -> None:
    whole = outcome([stream], SSEParser(**limits))
    one_by_one = [stream[i : i + 1] for i in range(len(stream))]
    assert outcome(one_by_one, SSEParser(**limits)) == whole, "bytewise"
    chunks = data.draw(chunked(stream), label="chunks")
    assert outcome(chunks, SSEParser(**limits)) == whole, "chunked"


# -- 4. differential --------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(stream=st.binary(max_size=200), data=st.data())
def test_matches_reference_on_arbitrary_bytes(stream: bytes, data: st.DataObject) -> None:
    assert feed_all(data.draw(chunked(stream), label="chunks")) == reference_parse(stream)


@settings(max_examples=500, deadline=None)
@given(stream=sse_like_bytes(grammar_only=True), data=st.data())
def test_matches_reference_on_sse_like_streams(stream: bytes, data: st.DataObject) -> None:
    assert feed_all(data.draw(chunked(stream), label="chunks")) == reference_parse(stream)


@st.composite
def cumulative_streams(draw: st.DrawFn) -> bytes:
    """Long data lines, each the previous one with bytes inserted before its
    last two: the shape the parser's decode-reuse path takes.  The inserted
    bytes are arbitrary, so UTF-8 sequences get cut, completed and broken at
    the reuse boundary; the tails vary so the reuse is refused sometimes."""
    body = draw(st.binary(min_size=130, max_size=300)).replace(b"\n", b"").replace(b"\r", b"")
    tails = [b'"}', b"\xc3\xa9", b"}\xe2", b"ab", b'"\xf0']
    pieces = [b"data: " + body + draw(st.sampled_from(tails)) + b"\n\n"]
    for _ in range(draw(st.integers(1, 6))):
        insert = draw(st.binary(max_size=12)).replace(b"\n", b"").replace(b"\r", b"")
        previous = pieces[-1][6:-2]
        if draw(st.booleans()):
            line = previous[:-2] + insert + previous[-2:]  # the cumulative shape
        else:
            line = draw(st.binary(min_size=130, max_size=200)).replace(b"\n", b"")
            line = line.replace(b"\r", b"")
        pieces.append(b"data: " + line + b"\n\n")
    return b"".join(pieces)


@settings(max_examples=500, deadline=None)
@given(cumulative_streams(), st.data())
def test_decode_reuse_matches_the_reference(stream: bytes, data: st.DataObject) -> None:
    expected, last_id, retry = reference_parse(stream)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=6)))
    parser = SSEParser()
    events = []
    start = 0
    for cut in [*cuts, len(stream)]:
        events += parser.feed(stream[start:cut])
        start = cut
    events += parser.close()
    assert events == expected
    assert parser.last_event_id == last_id
    assert parser.retry == retry
