"""Parse-only runners: bytes chunks in, events counted; the same input for all."""

from __future__ import annotations

import codecs
from collections.abc import Callable

from gptalk_proto import SSEParser

Runner = Callable[[list[bytes]], int]


def ours(chunks: list[bytes]) -> int:
    parser = SSEParser()
    count = 0
    for chunk in chunks:
        count += len(parser.feed(chunk))
    return count


def framing_bound(chunks: list[bytes]) -> int:
    """Only cut the bytes into lines (bytes.split); no fields, no events.
    Events are counted as blank lines: the least any parser must do."""
    lines = 0
    tail = b""
    for chunk in chunks:
        parts = (tail + chunk).split(b"\n")
        tail = parts.pop()
        lines += len(parts)
    return lines // 2


def seed(chunks: list[bytes]) -> int:
    """The original client's approach: lines, then ``startswith(b"data: ")``.
    Fast, and wrong on CR or CRLF line ends and multi-line data."""
    count = 0
    tail = b""
    for chunk in chunks:
        lines = (tail + chunk).split(b"\n")
        tail = lines.pop()
        for line in lines:
            if line.startswith(b"data: "):
                count += 1
    return count


def httpx_sse(chunks: list[bytes]) -> int:
    """httpx-sse's own decoders, fed as ``EventSource.aiter_sse`` feeds them
    (httpx's text decoding, then lines, then events)."""
    from httpx_sse._decoders import SSEDecoder, SSELineDecoder

    text = codecs.getincrementaldecoder("utf-8")("replace")
    lines = SSELineDecoder()
    decoder = SSEDecoder()
    count = 0
    for chunk in chunks:
        for line in lines.decode(text.decode(chunk)):
            if decoder.decode(line.rstrip("\n")) is not None:
                count += 1
    for line in lines.flush():
        if decoder.decode(line) is not None:
            count += 1
    return count


def sseclient_py(chunks: list[bytes]) -> int:
    """sseclient-py, reading from an iterator of chunks."""
    import sseclient

    return sum(1 for _ in sseclient.SSEClient(iter(chunks)).events())


PARSERS: dict[str, Runner] = {
    "gptalk-proto": ours,
    "httpx-sse": httpx_sse,
    "sseclient-py": sseclient_py,
    "seed split": seed,
    "framing bound": framing_bound,
}
