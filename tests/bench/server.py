"""The benchmark server: a GPTalk server in its own process, serving the same
prebuilt bytes to every client, one HTTP chunk (one write) per event.

Run as ``python -m tests.bench.server``; it prints ``listening on PORT (LOOP)``,
LOOP the event loop it runs on (see :func:`loop_name`).
The text request's prompt names the workload: ``events:SIZE:COUNT:STYLE:ENDS``
(a reply of SIZE characters in COUNT events, JSON style ``ascii`` or ``raw``,
line ends ``lf`` or ``crlf``) or ``idle`` (one event, then silence).
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import re
import sys

from .workloads import gptalk_events

#: Workloads kept built.  A 64 KB reply in 4-character events is 650 MB of
#: stream; the benchmark runs its cells one after the other, so a few will do.
_CACHED = 3
_cache: dict[str, list[bytes]] = {}


def stream_chunks(workload: str) -> list[bytes]:
    """The chunk-framed events of a workload (built once, then reused)."""
    if workload not in _cache:
        if workload == "idle":
            events = gptalk_events(8, 1)[:1]
        else:
            _, size, count, style, ends = workload.split(":")
            events = gptalk_events(int(size), int(count), style, ends)
        while len(_cache) >= _CACHED:
            del _cache[next(iter(_cache))]
        _cache[workload] = [b"%x\r\n%s\r\n" % (len(event), event) for event in events]
    return _cache[workload]


def _json_response(obj: object) -> bytes:
    body = json.dumps(obj).encode()
    return b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (
        len(body),
        body,
    )


STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
)


#: Cap on one request, head and body: the benchmark's clients send requests
#: of under 2 KiB; a peer that sends more is not one of them.
MAX_REQUEST = 64 * 1024


class BenchProtocol(asyncio.Protocol):
    """One connection's requests, read by hand: the clients under test send
    plain requests (a head, then a ``content-length`` body or none), and a
    full HTTP parser here (h11 was) cost this process as much CPU per chat as
    the fastest client under test spent, so with 100 chats at once the
    server, not the client, set the pace."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.body = b""
        self.target = b""
        self.task: asyncio.Task[None] | None = None
        # Set while the transport holds more than its high mark: the stream
        # waits on it (the loop's own flow control, as a server's drain()).
        self.paused: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        # A client that lags gets up to 1 MiB queued, then the stream waits
        # until a quarter of that is left.  (It polled with a sleep of half a
        # millisecond, which uvloop's millisecond timers made a busy loop:
        # 17 ms of this process's CPU per 64 KB chat through the recording
        # proxy, taken from the proxy and the client on two cores.)
        transport.set_write_buffer_limits(high=1 << 20, low=1 << 18)  # type: ignore[attr-defined]

    def pause_writing(self) -> None:
        self.paused = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        paused, self.paused = self.paused, None
        if paused is not None and not paused.done():
            paused.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.task is not None:
            self.task.cancel()
        self.resume_writing()

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        while buffer:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(buffer) > MAX_REQUEST:
                    self.refuse(b"request head too long")
                return
            head = bytes(buffer[:end]).lower()
            if b"\r\ntransfer-encoding:" in head:
                self.refuse(b"request bodies must have a content-length")
                return
            found = re.search(rb"\r\ncontent-length:[ \t]*(\d+)[ \t]*(?:\r\n|$)", head)
            length = int(found.group(1)) if found else 0
            if end + 4 + length > MAX_REQUEST:
                self.refuse(b"request too long")
                return
            if len(buffer) < end + 4 + length:
                return
            request_line = bytes(buffer[: buffer.find(b"\r\n")])
            parts = request_line.split(b" ")
            if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
                self.refuse(b"bad request line")
                return
            self.target = parts[1]
            self.body = bytes(buffer[end + 4 : end + 4 + length])
            del buffer[: end + 4 + length]
            self.respond()

    def refuse(self, why: bytes) -> None:
        """Answer what no benchmark client sends with a 400, and close."""
        assert self.transport is not None
        self.transport.write(
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: %d\r\nconnection: close\r\n\r\n%s"
            % (len(why), why)
        )
        self.transport.close()
        self.buffer.clear()

    def respond(self) -> None:
        assert self.transport is not None
        path = self.target.split(b"?")[0]
        if path.endswith(b"/user/login"):
            self.transport.write(
                _json_response({"code": 0, "data": {"token": "t" * 32, "expires_at": 4102444800}})
            )
        elif path.endswith(b"/chatapi/text"):
            workload = json.loads(self.body)["content"]
            stream_chunks(workload)  # built here, before the stream is asked for
            # The stream token names the workload, in b64token characters
            # (RFC 6750): clients check the tokens they are handed.
            token = workload.replace(":", ".")
            self.transport.write(_json_response({"code": 0, "data": {"token": token}}))
        else:
            workload = self.target.split(b"token=")[1].decode().replace(".", ":")
            self.task = asyncio.ensure_future(self.stream(workload))

    async def stream(self, workload: str) -> None:
        transport = self.transport
        assert transport is not None
        transport.write(STREAM_HEAD)
        for chunk in stream_chunks(workload):
            transport.write(chunk)
            # Let the kernel take each event as its own write, as a server
            # that flushes every event does; wait when the client lags.
            if self.paused is not None:
                await self.paused
        if workload == "idle":
            await asyncio.Event().wait()
        transport.write(b"0\r\n\r\n")


def loop_name() -> str:
    """The event loop the server runs on: ``uvloop`` when it is installed
    (the bench extra has it), else ``asyncio``; ``BENCH_SERVER_LOOP=asyncio``
    forces asyncio's (to compare the two).

    Why uvloop: the rows compare clients, and on a machine of two cores the
    server's CPU competes with theirs (with 100 chats at once it was as
    much as our client's, 6,300 writes a round).  A server on uvloop, as
    uvicorn runs by default, spends less of it in Python: less of a row is
    the server's, for every client alike.  What it sends is the same bytes
    in the same writes.
    """
    if os.environ.get("BENCH_SERVER_LOOP") == "asyncio":
        return "asyncio"
    return "uvloop" if importlib.util.find_spec("uvloop") is not None else "asyncio"


async def main() -> None:
    for workload in sys.argv[1:]:
        stream_chunks(workload)  # build before serving: no client waits for it
    loop = asyncio.get_running_loop()
    server = await loop.create_server(BenchProtocol, "127.0.0.1", 0, backlog=2048)
    port = server.sockets[0].getsockname()[1]
    print(f"listening on {port} ({loop_name()})", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    if loop_name() == "uvloop":
        import uvloop

        uvloop.run(main())
    else:
        asyncio.run(main())
