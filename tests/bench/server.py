"""The benchmark server: a GPTalk server in its own process, serving the same
prebuilt bytes to every client, one HTTP chunk (one write) per event.

Run as ``python -m tests.bench.server``; it prints ``listening on PORT``.
The text request's prompt names the workload: ``events:SIZE:COUNT:STYLE:ENDS``
(a reply of SIZE characters in COUNT events, JSON style ``ascii`` or ``raw``,
line ends ``lf`` or ``crlf``) or ``idle`` (one event, then silence).
"""

from __future__ import annotations

import asyncio
import json
import sys

import h11

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


class BenchProtocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.conn = h11.Connection(h11.SERVER)
        self.transport: asyncio.Transport | None = None
        self.body = b""
        self.target = b""
        self.tokens: dict[str, str] = {}
        self.task: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        if self.task is not None:
            self.task.cancel()

    def data_received(self, data: bytes) -> None:
        self.conn.receive_data(data)
        while True:
            event = self.conn.next_event()
            if event is h11.NEED_DATA or event is h11.PAUSED:
                return
            if isinstance(event, h11.Request):
                self.target = event.target
                self.body = b""
            elif isinstance(event, h11.Data):
                self.body += event.data
            elif isinstance(event, h11.EndOfMessage):
                self.respond()
                # Our own framing, not h11's: start the next cycle by hand.
                self.conn = h11.Connection(h11.SERVER)
            elif isinstance(event, h11.ConnectionClosed):
                return

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
            if transport.get_write_buffer_size() > 1 << 20:
                while transport.get_write_buffer_size() > 1 << 18:
                    await asyncio.sleep(0.0005)
        if workload == "idle":
            await asyncio.Event().wait()
        transport.write(b"0\r\n\r\n")


async def main() -> None:
    for workload in sys.argv[1:]:
        stream_chunks(workload)  # build before serving: no client waits for it
    loop = asyncio.get_running_loop()
    server = await loop.create_server(BenchProtocol, "127.0.0.1", 0, backlog=2048)
    port = server.sockets[0].getsockname()[1]
    print(f"listening on {port}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
