"""A purpose-built GPTalk peer whose stream answer is hand-written bytes.

Login and text go through the reference service; the stream request gets
whatever ``stream_body`` writes on the raw socket, so a test can send what no
well-behaved server would (a 200 MB line, produced lazily so the peer itself
holds almost nothing).
"""

from __future__ import annotations

import random
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress

import gptalk_proto as g

StreamWriter = Callable[[socket.socket], None]


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


def _serve(sock: socket.socket, service: g.Service, stream_body: StreamWriter) -> None:
    conn = g.ServerConnection(service)
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
            if isinstance(event, g.RequestReceived) and event.target.startswith(g.STREAM_PATH):
                with suppress(OSError):
                    stream_body(sock)
                return
            assert isinstance(event, (g.RequestReceived, g.BadRequest))
            for action in conn.respond(event, now=time.time()):
                if isinstance(action, g.Send):
                    sock.sendall(action.data)
                elif isinstance(action, g.Close):
                    return


@contextmanager
def hostile_peer(stream_body: StreamWriter) -> Iterator[str]:
    service = g.Service(entropy=random.Random(3).randbytes)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.05)
    stop = threading.Event()
    workers: list[threading.Thread] = []

    def accept() -> None:
        while not stop.is_set():
            try:
                sock, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            sock.settimeout(30)
            worker = threading.Thread(target=_serve, args=(sock, service, stream_body))
            worker.start()
            workers.append(worker)

    acceptor = threading.Thread(target=accept)
    acceptor.start()
    try:
        host, port = listener.getsockname()[:2]
        yield f"http://{host}:{port}"
    finally:
        stop.set()
        acceptor.join()
        listener.close()
        for worker in workers:
            worker.join(timeout=60)
