"""A purpose-built GPTalk peer whose stream answer is hand-written bytes.

Login and text go through the reference service; the stream request gets
whatever ``stream_body`` writes on the raw socket, so a test can send what no
well-behaved server would (a 200 MB line, produced lazily so the peer itself
holds almost nothing).
"""

from __future__ import annotations

import random
import socket
from collections.abc import Iterator
from contextlib import contextmanager

import gptalk_proto as g

from .threaded_server import StreamWriter, listening, serve_connection

__all__ = ["StreamWriter", "chunked", "endless_line", "hostile_peer"]


def chunked(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def endless_line(total: int, piece: int = 64 * 1024) -> StreamWriter:
    """A stream whose first event is one line of ``total`` bytes, never ended."""

    def write(sock: socket.socket) -> None:
        sock.sendall(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
            b"transfer-encoding: chunked\r\n\r\n" + chunked(b'data: {"content": "')
        )
        block = chunked(b"a" * piece)
        sent = 0
        while sent < total:
            sock.sendall(block)
            sent += piece

    return write


@contextmanager
def hostile_peer(stream_body: StreamWriter) -> Iterator[str]:
    service = g.Service(entropy=random.Random(3).randbytes)
    with listening(
        lambda sock: serve_connection(sock, service, stream_body), timeout=30, join_timeout=60
    ) as (host, port):
        yield f"http://{host}:{port}"
