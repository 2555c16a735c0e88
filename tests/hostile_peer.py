"""A purpose-built GPTalk peer whose stream answer is hand-written bytes.

Login and text go through the reference service; the stream request gets
whatever ``stream_body`` writes on the raw socket, so a test can send what no
well-behaved server would (a 200 MB line, produced lazily so the peer itself
holds almost nothing).
"""

from __future__ import annotations

import random
import socket
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from urllib.parse import urlsplit

import gptalk_proto as g
import gptalk_proto.server

from .threaded_server import StreamWriter, listening, serve_connection

__all__ = [
    "Answer",
    "StreamWriter",
    "chunked",
    "endless_line",
    "hostile_peer",
    "request_kind",
    "scripted_peer",
]


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
    service = g.server.Service(entropy=random.Random(3).randbytes)
    with listening(
        lambda sock: serve_connection(sock, service, stream_body), timeout=30, join_timeout=60
    ) as (host, port):
        yield f"http://{host}:{port}"


#: What a scripted peer sees of a request (the core's ``Request`` and the
#: server's ``RequestReceived`` both have these fields): target, headers, body.
Answer = Callable[[str, tuple[tuple[str, str], ...], bytes], bytes]


def request_kind(target: str) -> str:
    """``login``, ``text`` or ``stream`` for a request target (absolute-form too)."""
    path = urlsplit(target).path
    return {g.LOGIN_PATH: "login", g.TEXT_PATH: "text", g.STREAM_PATH: "stream"}.get(path, "other")


@contextmanager
def scripted_peer(answers: Mapping[str, Answer]) -> Iterator[str]:
    """A GPTalk peer over loopback whose answers to the request kinds in
    ``answers`` (``login``, ``text``, ``stream``, or ``any``) are the raw bytes
    the answer returns, written whole before the connection closes; the other
    requests go to the reference service."""
    service = g.server.Service(entropy=random.Random(5).randbytes)

    def handle(sock: socket.socket) -> None:
        conn = g.server.ServerConnection(service)
        with sock:
            while True:
                event = conn.next_event()
                if event is g.NEED_DATA:
                    try:
                        conn.receive_data(sock.recv(65536))
                    except OSError:
                        return
                    continue
                if event is g.PAUSED:
                    return
                if isinstance(event, g.server.RequestReceived):
                    answer = answers.get("any") or answers.get(request_kind(event.target))
                    if answer is not None:
                        with suppress(OSError):
                            sock.sendall(answer(event.target, event.headers, event.body))
                            sock.shutdown(socket.SHUT_RDWR)
                        return
                assert isinstance(event, (g.server.RequestReceived, g.server.BadRequest))
                for action in conn.respond(event, now=time.time()):
                    if isinstance(action, g.server.Send):
                        sock.sendall(action.data)
                    elif not isinstance(action, g.server.Pause):
                        return

    with listening(handle, timeout=30, join_timeout=60) as (host, port):
        yield f"http://{host}:{port}"
