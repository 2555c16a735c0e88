"""The recording proxy's wait for an answer after its client's end is an
idle wait, not a total one.

A client may half-close once it sent its request (RFC 9112 section 9.6)
and still read the answer; the proxy then waits for the upstream's answer
to be passed on.  That wait was one total deadline of ``idle_timeout``: a
long stream still coming steadily from the upstream was cut at it, though
it was never idle.  Now it goes on while upstream reads are passed on, and
ends after ``idle_timeout`` without one (test_record_proxy: a silent
upstream is let go).

The upstream sends its next chunk only once the client read the previous
one, and a short pause after it: the gaps stay far below the timeout, and
the chunks go on until two timeouts passed since the first.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from urllib.parse import urlsplit

import anyio
import pytest

from gptalk_transports._server.driver import Limits

from .proxy_cases import proxy_to
from .replay_cases import anyio_backend  # noqa: F401 (a fixture: asyncio and trio)

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(120)]

#: Seconds any one wait of the test may take before it fails (a safety net).
SAFETY = 30.0
#: The proxy's idle timeout: the stream lasts two of them.  Long enough
#: that a loaded machine's stall does not pass for an idle upstream (the
#: gaps are GAP and a read; a false failure needs a whole IDLE without one).
IDLE = 1.5
#: The upstream's pause after the client read a chunk: far below IDLE.
GAP = 0.01
HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n"
CHUNK = b"5\r\nhello\r\n"
LAST = b"0\r\n\r\n"
LIMITS = Limits(
    header_timeout=SAFETY,
    request_timeout=SAFETY,
    min_rate=None,
    min_rate_grace=0.0,
    idle_timeout=IDLE,
)


@contextmanager
def _steady_stream(
    read: threading.Semaphore, gone: threading.Event
) -> Iterator[tuple[str, list[int]]]:
    """An upstream that answers one request with a chunked stream: a chunk,
    then (once ``read`` says the client read it, and GAP after) the next,
    until 2 * IDLE passed since the first; then the last chunk, and its
    close.  It stops early once ``gone`` says the client saw its end.
    Yields its URL and, once it is done, the chunks it sent."""
    listener = socket.create_server(("127.0.0.1", 0))
    sent: list[int] = []

    def serve() -> None:
        sock, _ = listener.accept()
        with sock, suppress(OSError):  # (a proxy that cut it: the test fails on the bytes)
            seen = b""
            while b"\r\n\r\n" not in seen:
                seen += sock.recv(4096)
            sock.sendall(HEAD)
            count = 0
            began = time.monotonic()
            while time.monotonic() - began < 2 * IDLE:
                sock.sendall(CHUNK)
                count += 1
                if not read.acquire(timeout=SAFETY) or gone.is_set():
                    break
                time.sleep(GAP)
            sent.append(count)
            sock.sendall(LAST)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}", sent
    finally:
        thread.join(SAFETY)
        listener.close()


def _half_closed_client(url: str, read: threading.Semaphore, gone: threading.Event) -> bytes:
    """Send the request, half-close, read to the end, telling ``read`` of
    each chunk read, and ``gone`` of the end."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname or "", parts.port or 0), SAFETY) as sock:
        sock.sendall(b"GET /stream HTTP/1.1\r\nhost: x\r\n\r\n")
        sock.shutdown(socket.SHUT_WR)
        got = b""
        told = 0
        while data := sock.recv(65536):
            got += data
            for _ in range(got.count(b"hello") - told):
                read.release()
            told = got.count(b"hello")
    gone.set()
    read.release()  # (an upstream that waits for a read: the stream was cut)
    return got


@pytest.mark.parametrize("count_chats", [False, True], ids=["unfollowed", "followed"])
async def test_a_stream_that_flows_longer_than_the_idle_timeout_is_not_cut(
    count_chats: bool,
) -> None:
    # Unfollowed, the proxy passes the half-close on and waits for the
    # upstream's close; followed (--chats), it waits while the response is
    # pending.  Either way the stream flows two idle timeouts: whole.
    read, gone = threading.Semaphore(0), threading.Event()
    with _steady_stream(read, gone) as (upstream, sent):
        async with proxy_to(upstream, limits=LIMITS, count_chats=count_chats) as (url, _):
            got = await anyio.to_thread.run_sync(_half_closed_client, url, read, gone)
    [count] = sent
    assert count >= 2 * IDLE / GAP / 10  # (many chunks: each gap far below IDLE)
    assert got.endswith(LAST), got[-100:]
    assert got == HEAD + CHUNK * count + LAST
