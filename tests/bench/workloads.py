"""Deterministic workloads: the same bytes for every parser and every client."""

from __future__ import annotations

import json

#: Bytes per chunk for the parse-only workloads.
CHUNK = 16 * 1024


def chunked(data: bytes, size: int = CHUNK) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def small_deltas(events: int = 200_000) -> bytes:
    """Small delta events with LF line ends: ``data: {"content": "w123"}``."""
    return b"".join(b'data: {"content": "w%d"}\n\n' % (number % 1000) for number in range(events))


def multiline_crlf(events: int = 50_000) -> bytes:
    """Multi-line events with ``id`` and ``event``, CRLF line ends."""
    return b"".join(
        b"id: %d\r\nevent: update\r\ndata: first line %d\r\ndata: second line\r\n"
        b"data: third line\r\n\r\n" % (number, number)
        for number in range(events)
    )


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


def gptalk_events(size: int, events: int) -> list[bytes]:
    """GPTalk cumulative events for a reply, then ``[DONE]``: one bytes each."""
    out = []
    content = ""
    for piece in reply_pieces(size, events):
        content += piece
        data = json.dumps({"content": content}, ensure_ascii=False)
        out.append(b"data: " + data.encode() + b"\n\n")
    out.append(b"data: [DONE]\n\n")
    return out


def gptalk_stream(size: int = 8 * 1024, events: int = 2000) -> bytes:
    """The whole stream of an ``size``-character reply in ``events`` events."""
    return b"".join(gptalk_events(size, events))
