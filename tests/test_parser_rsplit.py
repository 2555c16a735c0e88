"""simple_run cuts a region's text at its block separators with ``rsplit``
(gptalk_proto/sse/_blocks.py: the backward search is the faster one on texts
of words).  The pieces must be those of ``split``: values that hold parts of
a separator (its "data: ", its space, a "data:" without the space, runs of
"data: ") next to real separators, fed whole, byte by byte and at random
splits, give the reference parser's events."""

from __future__ import annotations

import pytest

from gptalk_proto.sse import _blocks
from gptalk_proto.testing._reference_sse import reference_parse

from .sse_cases import check_stream

SEPARATORS = {False: "\n\ndata: ", True: "\r\n\r\ndata: "}

# Values that look like the separator's tail, or start or end like it.
VALUES = [
    "",
    " ",
    "data: ",
    "data: data: ",
    "data:",
    ": ",
    "a data: b",
    "data: x data: ",
    " data: ",
    "caf\u00e9 \u2713 data: \u2713",
    "x" * 300 + "data: " + "y" * 300,
]


@pytest.mark.parametrize("crlf", [False, True])
def test_the_region_s_values_are_split_s_pieces(crlf: bool) -> None:
    """Every value above, next to every other one, in one region: simple_run
    gives exactly the values (the forward split's pieces)."""
    sep = SEPARATORS[crlf]
    values = [a for a in VALUES for _ in VALUES] + [b for _ in VALUES for b in VALUES]
    closing = "\r\n\r\n" if crlf else "\n\n"  # the last line end, the blank line
    text = "data: " + sep.join(values) + closing
    buf = text.encode()
    end = len(buf) - (2 if crlf else 1)  # the region stops before its last line end
    line = buf.find(b"\n", 0, end)
    run = _blocks.simple_run(buf, 0, end, crlf, line)
    assert run is not None
    opened, got, waiting = run
    assert (opened, waiting) == (False, None)
    assert got == text[6 : -len(closing)].split(sep) == values


@pytest.mark.parametrize("ends", [b"\n", b"\r\n"])
def test_streams_of_such_values_parse_as_the_reference(ends: bytes) -> None:
    """The values as events, fed whole, byte by byte and at random splits."""
    blocks = [b"data: " + value.encode() + b"\n\n" for value in VALUES for _ in range(3)]
    stream = b"".join(blocks).replace(b"\n", ends)
    events, last_id, retry = reference_parse(stream)
    assert [event.data for event in events] == [v for v in VALUES for _ in range(3)]
    check_stream(stream, events, last_event_id=last_id, retry=retry)
