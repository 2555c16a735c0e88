"""A few-line blocking driver of ServerConnection on a loopback socket.

Independent of the project's transports: it shows the server machine needs
nothing but a socket, and gives core tests a real TCP peer.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress

import gptalk_proto as g
import gptalk_proto.server

#: Writes a whole stream answer, head included, on the raw socket.
StreamWriter = Callable[[socket.socket], None]


def serve_connection(
    sock: socket.socket, service: g.server.Service, stream_body: StreamWriter | None = None
) -> None:
    """Serve one connection; with ``stream_body``, the stream request gets
    what it writes instead of the service's answer."""
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
            if (
                stream_body is not None
                and isinstance(event, g.server.RequestReceived)
                and event.target.startswith(g.STREAM_PATH)
            ):
                with suppress(OSError):
                    stream_body(sock)
                return
            assert isinstance(event, (g.server.RequestReceived, g.server.BadRequest))
            for action in conn.respond(event, now=time.time()):
                if isinstance(action, g.server.Send):
                    sock.sendall(action.data)
                elif isinstance(action, g.server.Pause):
                    time.sleep(action.seconds)
                else:
                    with suppress(OSError):
                        sock.shutdown(socket.SHUT_RDWR)
                    return


@contextmanager
def listening(
    handle: Callable[[socket.socket], None], *, timeout: float, join_timeout: float
) -> Iterator[tuple[str, int]]:
    """Accept on 127.0.0.1 until the block ends, each connection handled in a
    thread of its own (sockets time out after ``timeout`` s); yield (host, port)."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.05)
    stop = threading.Event()
    workers: list[threading.Thread] = []

    def accept_loop() -> None:
        while not stop.is_set():
            try:
                sock, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            sock.settimeout(timeout)
            worker = threading.Thread(target=handle, args=(sock,), daemon=True)
            worker.start()
            workers.append(worker)

    acceptor = threading.Thread(target=accept_loop, daemon=True)
    acceptor.start()
    try:
        yield listener.getsockname()[:2]
    finally:
        stop.set()
        acceptor.join()
        listener.close()
        for worker in workers:
            worker.join(timeout=join_timeout)


@contextmanager
def threaded_server(service: g.server.Service) -> Iterator[tuple[str, int]]:
    """Serve ``service`` on 127.0.0.1 until the block ends; yield (host, port)."""
    with listening(
        lambda sock: serve_connection(sock, service), timeout=10, join_timeout=15
    ) as address:
        yield address
