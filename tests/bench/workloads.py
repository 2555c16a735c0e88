"""Deterministic workloads: the same bytes for every parser and every client.

Every workload is named by the matrix's dimensions (see :mod:`tests.bench.matrix`):
the JSON style (``ascii``: ``\\u00e9`` escapes, as ``json.dumps`` writes by
default; ``raw``: UTF-8 text), the characters each event adds, and the line ends
(``lf`` or ``crlf``).  Read sizes are the parse runner's business.
"""

from __future__ import annotations

import itertools
import json

#: Bytes per chunk for the parse-only workloads, unless a cell says otherwise.
CHUNK = 16 * 1024

#: The most stream one parse cell holds.  A 64 KB reply sent one character per
#: event is 2 GB of cumulative JSON; such a cell keeps its LAST events (the
#: longest lines, the hardest part of the stream) up to this many bytes.
MAX_PARSE_STREAM = 4 * 1024 * 1024

STYLES = ("ascii", "raw")
ENDS = ("lf", "crlf")


def chunked(data: bytes, size: int = CHUNK) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def dumps(value: object, style: str) -> bytes:
    """JSON as a server writes it: ``ascii`` escapes non-ASCII, ``raw`` does not."""
    return json.dumps(value, ensure_ascii=style == "ascii").encode()


def with_ends(stream: bytes, ends: str) -> bytes:
    return stream.replace(b"\n", b"\r\n") if ends == "crlf" else stream


def reply_pieces(size: int, events: int) -> list[str]:
    """A reply of ``size`` characters in ``events`` pieces (ASCII and not)."""
    base = 'The quick brown fox jumps over the lazy dog; caf\u00e9 \u2713 "q" \\ \n'
    text = (base * (size // len(base) + 1))[:size]
    step, extra = divmod(size, events)
    pieces, start = [], 0
    for index in range(events):
        end = start + step + (1 if index < extra else 0)
        pieces.append(text[start:end])
        start = end
    return pieces


def gptalk_events(
    size: int, events: int, style: str = "raw", ends: str = "lf", budget: int | None = None
) -> list[bytes]:
    """GPTalk cumulative events for a reply, then ``[DONE]``: one bytes each.

    With ``budget``, only the last events that fit in that many bytes (and
    ``[DONE]``): the content before them is built, not encoded.
    """
    pieces = reply_pieces(size, events)
    end = b"\r\n\r\n" if ends == "crlf" else b"\n\n"
    first = 0
    if budget is not None:
        # Event k's line is about the content so far times the style's bytes
        # per character: walk back from the last event until the budget is spent.
        per_char = len(dumps("".join(pieces), style)) / max(size, 1)
        lengths = list(itertools.accumulate(map(len, pieces)))
        first, total = len(pieces), 0.0
        while first > 0 and total < budget:
            first -= 1
            total += lengths[first] * per_char + 20
    content = "".join(pieces[:first])
    out = []
    for piece in pieces[first:]:
        content += piece
        out.append(b"data: " + dumps({"content": content}, style) + end)
    out.append(b"data: [DONE]" + end)
    return out


def gptalk_stream(
    size: int = 8 * 1024,
    events: int = 2000,
    style: str = "raw",
    ends: str = "lf",
    budget: int | None = None,
) -> bytes:
    """The whole stream (or its last ``budget`` bytes of events) of a reply."""
    return b"".join(gptalk_events(size, events, style, ends, budget))


def small_deltas(
    events: int = 200_000, chars: int = 4, style: str = "raw", ends: str = "lf"
) -> bytes:
    """Small delta events: ``data: {"content": "<chars characters>"}``, the
    characters taken from the reply text (so ``raw`` carries UTF-8)."""
    pieces = reply_pieces(chars * 1000, 1000)
    lines = [b"data: " + dumps({"content": piece}, style) + b"\n\n" for piece in pieces]
    return with_ends(b"".join(lines[n % 1000] for n in range(events)), ends)


def multiline(events: int = 50_000, style: str = "raw", ends: str = "crlf") -> bytes:
    """Multi-line events with ``id`` and ``event``: three data lines each."""
    second = dumps("second line caf\u00e9 \u2713", style)
    block = b"id: %d\nevent: update\ndata: first line %d\ndata: " + second + b"\ndata: third\n\n"
    return with_ends(b"".join(block % (n, n) for n in range(events)), ends)
