"""Hypothesis strategies for server-sent event streams.

Every stream :func:`sse_encodings` draws comes with the events a conforming
parser must return for it (WHATWG HTML, "Server-sent events"), so a consumer
under test can be checked against a known answer, not just for not crashing.
:func:`sse_like_bytes` draws hostile near-SSE bytes with no known answer: for
robustness and differential properties.
"""

from __future__ import annotations

import itertools
from typing import NamedTuple

from hypothesis import strategies as st

from ..sse._event import SSEEvent

__all__ = [
    "EncodedStream",
    "chunkings",
    "sse_encodings",
    "sse_event_lists",
    "sse_events",
    "sse_like_bytes",
    "sse_streams",
]

_BOM = b"\xef\xbb\xbf"
_LF, _CR, _CRLF = b"\n", b"\r", b"\r\n"

# A chunking of a longer stream than this is never drawn byte by byte: a list
# of one-byte chunks that long only slows the example down.
_MAX_BYTEWISE = 4096


@st.composite
def chunkings(
    draw: st.DrawFn, data: bytes, *, max_chunks: int = 40, allow_empty: bool = False
) -> list[bytes]:
    """A way to cut ``data`` into chunks, as reads off a socket would.

    Now and then one byte per chunk, otherwise up to ``max_chunks`` cuts at
    arbitrary points; the chunks always join back to ``data``.  Empty chunks
    appear only with ``allow_empty`` (many APIs, ``receive_data`` among them,
    take ``b""`` to mean end of stream).  Shrinks towards ``[data]``.
    """
    if not data:
        return [b""] if allow_empty and draw(st.booleans()) else []
    if len(data) <= _MAX_BYTEWISE and draw(st.integers(0, 9)) == 9:
        return [data[i : i + 1] for i in range(len(data))]
    cuts = draw(st.lists(st.integers(0, len(data)), max_size=min(max_chunks, len(data) + 1)))
    bounds = [0, *sorted(cuts), len(data)]
    chunks = [data[a:b] for a, b in itertools.pairwise(bounds)]
    return chunks if allow_empty else [chunk for chunk in chunks if chunk]


class EncodedStream(NamedTuple):
    """An ``text/event-stream`` body and what parsing it must give.

    * ``data``: the bytes.
    * ``events``: the events a conforming parser dispatches, in order.
    * ``last_event_id``, ``retry``: the parser's state at the end (the last
      event ID and the reconnection time, ``None`` if never set).
    """

    data: bytes
    events: tuple[SSEEvent, ...]
    last_event_id: str
    retry: int | None


# Characters worth meeting in values: spaces and colons (the field syntax),
# NUL, a BOM, non-ASCII of every UTF-8 length.  Lone surrogates cannot be
# encoded, CR and LF end lines: neither is in a field value.
_TRICKY = " :\x00\t\u00e9\u2026\ufeff\u2028\U0001f600"


def _values(exclude: str, max_size: int) -> st.SearchStrategy[str]:
    chars = st.one_of(
        st.sampled_from([c for c in _TRICKY if c not in exclude]),
        st.characters(codec="utf-8", exclude_characters="\r\n" + exclude),
    )
    return st.text(chars, max_size=max_size)


def sse_events(
    *,
    max_data_size: int = 20,
    event_types: st.SearchStrategy[str] | None = None,
    ids: st.SearchStrategy[str] | None = None,
    retries: st.SearchStrategy[int] | None = None,
) -> st.SearchStrategy[SSEEvent]:
    """Single events any SSE encoder can send: data of any text but CR (LF
    splits it into several ``data`` lines), an event type and an ID without
    CR or LF (nor NUL in the ID, which parsers ignore), a retry or none.

    The ``id`` of a drawn event is what it carries on the wire; in a list,
    :func:`sse_event_lists` makes IDs persist as parsers report them.
    """
    data = st.text(st.characters(codec="utf-8", exclude_characters="\r"), max_size=max_data_size)
    types = (
        event_types
        if event_types is not None
        else st.one_of(st.just("message"), _values("", 10).filter(bool))
    )
    id_values = ids if ids is not None else _values("\x00", 10)
    retry_values = retries if retries is not None else st.integers(0, 10**12)
    return st.builds(
        SSEEvent,
        event=types,
        data=data,
        id=id_values,
        retry=st.none() | retry_values,
    )


@st.composite
def sse_event_lists(
    draw: st.DrawFn,
    events: st.SearchStrategy[SSEEvent] | None = None,
    *,
    min_size: int = 0,
    max_size: int = 8,
) -> list[SSEEvent]:
    """Lists of events as a parser returns them: an event's ``id`` is the last
    event ID at its dispatch, so it repeats the one before unless the event
    set a new one (spec: the last event ID buffer "does not get reset")."""
    drawn = draw(st.lists(events or sse_events(), min_size=min_size, max_size=max_size))
    out: list[SSEEvent] = []
    last_id = ""
    for event in drawn:
        kept = event._replace(id=last_id) if draw(st.booleans()) else event
        last_id = kept.id
        out.append(kept)
    return out


def _field(name: str, value: str, style: int) -> str:
    # spec: "If value starts with a U+0020 SPACE character, remove it": a
    # value that starts with a space needs the space after the colon.
    if not value and style == 0:
        return name  # a field name alone: the value is the empty string
    if style == 1 and not value.startswith(" "):
        return f"{name}:{value}"
    return f"{name}: {value}"


@st.composite
def sse_encodings(
    draw: st.DrawFn,
    events: list[SSEEvent],
    *,
    comments: bool = True,
    noise: bool = True,
    bom: bool | None = None,
    incomplete_tail: bool = False,
) -> EncodedStream:
    """Every way to write ``events`` (as :func:`sse_event_lists` draws them).

    Line ends vary line by line (LF, CR, CRLF), field order varies within an
    event, the space after the colon comes and goes, ``event: message`` is
    sometimes spelled out and an unchanged ID sometimes repeated.  With
    ``comments``, comment lines go anywhere; with ``noise``, ignored lines
    too (unknown fields, invalid retry values, extra blank lines between
    events).  ``bom``: start with a UTF-8 BOM (``None``: sometimes).  With
    ``incomplete_tail``, an unfinished event may follow the last one; parsers
    discard it at the end of the stream.
    """
    lines: list[str] = []

    def extras() -> None:
        if comments and draw(st.integers(0, 3)) == 0:
            lines.append(":" + draw(_values("", 8)))
        if noise and draw(st.integers(0, 5)) == 0:
            lines.append(
                draw(
                    st.sampled_from(
                        ["x-unknown: 1", "Data: case matters", "retry: 12x", "retry:", "retry: -1"]
                    )
                )
            )

    last_id = ""
    last_retry: int | None = None
    for event in events:
        if noise and draw(st.integers(0, 5)) == 0:
            lines.append("")  # a blank line with nothing buffered dispatches nothing
        style = draw(st.integers(0, 2))
        others: list[str] = []
        if event.event != "message":
            others.append(_field("event", event.event, style))
        elif draw(st.integers(0, 3)) == 0:
            # spec: an empty event type buffer dispatches as "message".
            others.append(_field("event", draw(st.sampled_from(["", "message"])), style))
        if event.id != last_id or draw(st.integers(0, 4)) == 0:
            others.append(_field("id", event.id, style))
        if event.retry is not None:
            others.append(_field("retry", str(event.retry), style))
        fields = [_field("data", line, draw(st.integers(0, 2))) for line in event.data.split("\n")]
        for field in others:
            # Other fields go anywhere among the data lines, which keep their order.
            fields.insert(draw(st.integers(0, len(fields))), field)
        for field in fields:
            extras()
            lines.append(field)
        extras()
        lines.append("")  # dispatch
        last_id = event.id
        if event.retry is not None:
            last_retry = event.retry
    tail = incomplete_tail and draw(st.booleans())
    if tail:
        # Data that never dispatches: no blank line follows it.
        lines.append(_field("data", draw(_values("", 8)), 2))
        if draw(st.booleans()):
            lines.append(":" + draw(_values("", 4)))

    out = bytearray(_BOM if (bom if bom is not None else draw(st.integers(0, 4)) == 0) else b"")
    previous_end = b""
    for index, line in enumerate(lines):
        end = draw(st.sampled_from([_LF, _CR, _CRLF]))
        if not line and previous_end == _CR and end != _CR:
            # CR then an empty line ending in LF reads as one CRLF line end:
            # the blank line would vanish.
            end = _CR
        if tail and index == len(lines) - 1 and draw(st.booleans()):
            end = b""  # the very last line may stop mid-line
        out += line.encode("utf-8") + end
        previous_end = end
    return EncodedStream(bytes(out), tuple(events), last_id, last_retry)


def sse_streams(
    events: st.SearchStrategy[SSEEvent] | None = None,
    *,
    max_events: int = 8,
    comments: bool = True,
    noise: bool = True,
) -> st.SearchStrategy[EncodedStream]:
    """Event lists and one encoding of each: :func:`sse_event_lists` then
    :func:`sse_encodings`."""
    return sse_event_lists(events, max_size=max_events).flatmap(
        lambda drawn: sse_encodings(drawn, comments=comments, noise=noise)
    )


# -- hostile bytes -------------------------------------------------------------------------

# Field names a parser knows, a case variant, an unknown one, and "" (which
# makes ":value" lines, i.e. comments); "data" weighs more, so that event caps
# are reached now and then.
_FIELD_NAMES = ["data", "data", "data", "event", "id", "retry", "Data", "x", ""]
_SEPARATORS = ["", ":", ": ", ":  "]
_LINE_ENDS = [_LF, _CR, _CRLF]
_HOSTILE_CHARS = st.one_of(
    st.sampled_from(list(" ::\x00a09 \t\u00e9\u2026\ufeff\u0663\u00b2\U0001f600")),
    st.characters(codec="utf-8"),  # now and then a CR or LF in the middle of a "line"
)
_HOSTILE_VALUES = st.text(_HOSTILE_CHARS, max_size=8)
# Broken UTF-8, half a BOM, a lone CR.
_JUNK = st.sampled_from([b"\xff", b"\xe2\x82", b"\xed\xa0\x80", _BOM, b"\xef\xbb", b"\xc3", b"\r"])
_pieces = st.one_of(
    st.builds(
        lambda name, sep, value, end: (name + sep + value).encode() + end,
        st.sampled_from(_FIELD_NAMES),
        st.sampled_from(_SEPARATORS),
        _HOSTILE_VALUES,
        st.sampled_from(_LINE_ENDS),
    ),
    st.sampled_from(_LINE_ENDS),  # blank lines: dispatch
    st.builds(
        lambda value, end: b":" + value.encode() + end, _HOSTILE_VALUES, st.sampled_from(_LINE_ENDS)
    ),
    _JUNK,
)
_grammar_streams = st.builds(
    lambda start, body: start + b"".join(body),
    st.sampled_from([b"", b"", _BOM, _BOM + _BOM, b"\xef\xbb"]),
    st.lists(_pieces, max_size=24),
)
# Mostly data, id and retry lines: these reach event caps, and mix size errors
# with fields that change the parser's state.
_busy_streams = st.lists(
    st.one_of(
        st.builds(
            lambda name, value, end: name + value.encode() + end,
            st.sampled_from([b"data:", b"data:", b"data: ", b"id:", b"retry:"]),
            st.one_of(_HOSTILE_VALUES, st.integers(0, 99).map(str)),
            st.sampled_from(_LINE_ENDS),
        ),
        st.sampled_from(_LINE_ENDS),
    ),
    max_size=16,
).map(b"".join)


def sse_like_bytes(*, grammar_only: bool = False) -> st.SearchStrategy[bytes]:
    """Bytes that look like an event stream and often are not.

    Lines from a grammar of SSE fields (known, unknown, miscased; every
    separator and line end; values with NUL, BOMs, CR or LF inside), comments,
    broken UTF-8 and stray BOMs, mixed with arbitrary bytes (unless
    ``grammar_only``).  There is no known answer: use them for robustness
    ("only protocol errors escape") and differential properties.
    """
    grammar = st.one_of(_grammar_streams, _busy_streams)
    return grammar if grammar_only else st.one_of(st.binary(max_size=120), grammar)
