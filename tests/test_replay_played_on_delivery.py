"""The replay server counts a step as played once its whole response was
written, not when a request matched it: a client that reads part of a
stream and goes away leaves the step unplayed, so neither the unplayed-steps
check (``serve_cassettes``, ``gptalk replay --serve`` at a signal) nor
``--once`` takes a run cut short for a whole one.  Before, the step counted
at the match: the API raised nothing and the command exited 0.

The stream step of the cassette here carries 8 MiB more than the client's
receive buffer and the server's send buffer hold together, so the server is
still writing it when the client resets the connection: no timing involved.
"""

from __future__ import annotations

import json
import signal
import socket
import struct
import threading
from pathlib import Path
from urllib.parse import urlsplit

import anyio
import pytest

import gptalk_proto as g
from gptalk_transports import load_cassette
from gptalk_transports._server import replay as replay_module
from gptalk_transports._server.replay import serve_cassettes

from .console import listening
from .replay_cases import (
    CASSETTES,
    anyio_backend,  # noqa: F401 (a fixture: asyncio and trio)
)
from .test_replay_server_core import recorded_token, token_of, wire

pytestmark = pytest.mark.timeout(60)

#: Bytes of the SSE comment added to the stream step.
BIG = 8 * 1024 * 1024
#: Bytes of it the client reads before it resets the connection.
READ_BEFORE_LEAVING = 64 * 1024
#: The client's receive buffer (see into_the_stream).
RECEIVE_BUFFER = 256 * 1024


def big_stream_cassette(directory: Path) -> Path:
    """plain-chat.json with an 8 MiB SSE comment in its stream's chunks."""
    document = json.loads((CASSETTES / "plain-chat.json").read_text(encoding="utf-8"))
    stream = document["interactions"][-1]
    assert stream["response"]["headers"][-1] == ["transfer-encoding", "chunked"]
    comment = ":" + "x" * (BIG - 2) + "\n"
    chunk = f"{len(comment):x}\r\n{comment}\r\n"
    head = stream["chunks"][0]
    stream["chunks"].insert(1, {"t": head["t"], "encoding": "utf-8", "data": chunk})
    path = directory / "big-stream.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def into_the_stream(url: str, cassette: g.cassette.Cassette) -> tuple[socket.socket, bytes]:
    """Connect, play login and text whole, send the stream's request and
    read READ_BEFORE_LEAVING bytes of it: (the socket, what was read)."""
    parts = urlsplit(url)
    sock = socket.socket()
    # A receive buffer set before the connect (after it, a small window
    # stalled the transfer), small enough that the 8 MiB cannot all wait in
    # it and the server's send buffer (4 MiB at most on Linux), and large
    # enough that the rest, read after a stop began, comes in a few turns.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
    try:
        sock.settimeout(30)
        sock.connect((parts.hostname or "", parts.port or 0))
        swap: dict[bytes, bytes] = {}
        *whole, stream = cassette.interactions
        for item in whole:
            sock.sendall(wire(item, swap))
            got = b""
            while len(got) < len(item.response.wire) and (data := sock.recv(65536)):
                got += data
            assert got == item.response.wire.replace(recorded_token(item), token_of(got))
            swap[recorded_token(item)] = token_of(got)
        sock.sendall(wire(stream, swap))
        got = b""
        while len(got) < READ_BEFORE_LEAVING and (data := sock.recv(65536)):
            got += data
        assert got.startswith(b"HTTP/1.1 200 ")
    except BaseException:
        sock.close()
        raise
    return sock, got


def leave_mid_stream(url: str, cassette: g.cassette.Cassette) -> None:
    """Play login and text whole, then read part of the stream and reset."""
    sock, _ = into_the_stream(url, cassette)
    with sock:
        # Close with unread bytes and linger 0: a reset, at once.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


@pytest.mark.anyio
async def test_a_stream_left_midway_is_unplayed(tmp_path: Path) -> None:
    path = big_stream_cassette(tmp_path)
    cassette = load_cassette(path)
    server = g.cassette.ReplayServer([cassette], speed=0)
    with pytest.raises(g.cassette.CassetteUnplayed) as caught:
        async with serve_cassettes([cassette], server=server) as url:
            await anyio.to_thread.run_sync(leave_mid_stream, url, cassette)
    assert server.unplayed() == [("cassette 1", 3, "stream")]
    assert "stream" in str(caught.value)
    assert server.played() == 2


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_once_is_not_fooled_by_a_client_that_left_mid_stream(tmp_path: Path, signum: int) -> None:
    path = big_stream_cassette(tmp_path)
    cassette = load_cassette(path)
    with listening("replay", "--serve", "--speed", "0", "--once", str(path)) as (process, url):
        leave_mid_stream(url, cassette)
        # Still serving: the stream step was not played.  Stopped, it says so.
        assert process.poll() is None
        process.send_signal(signum)
        code = process.wait(timeout=15)
        assert process.stderr is not None
        errors = process.stderr.read()
    assert code == 1, errors
    assert f"gptalk: unplayed: {path} step 3 (stream)" in errors
    assert "step 1" not in errors
    assert "step 2" not in errors


def read_all_after(
    url: str, cassette: g.cassette.Cassette, part: threading.Event, stopping: threading.Event
) -> bytes:
    """Play login and text whole, read part of the stream (``part`` set),
    then, once the server's block is ending (``stopping``), the rest."""
    sock, got = into_the_stream(url, cassette)
    with sock:
        part.set()
        assert stopping.wait(30)
        while len(got) < len(cassette.interactions[-1].response.wire) and (
            data := sock.recv(65536)
        ):
            got += data
        return got


@pytest.mark.anyio
async def test_a_stop_lets_the_answer_being_written_go_out_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The client reads the stream whole, but the server's block ends while
    # the server still writes it (8 MiB: it waits on flow control).  Before,
    # the stop cancelled that write at once: the step counted unplayed
    # although the client got every byte (the openai SDK test failed so in
    # CI, where its last write waited a loop turn).  The stop now gives the
    # answers being written up to FAREWELL_TIMEOUT (finish_answers).
    # The wait ends when the answer is reported written (an event); its
    # bound is made a safety net only, as on a busy machine the client's
    # reading of the rest may take long.
    monkeypatch.setattr(replay_module, "FAREWELL_TIMEOUT", 60.0)
    cassette = load_cassette(big_stream_cassette(tmp_path))
    server = g.cassette.ReplayServer([cassette], speed=0)
    part, stopping = threading.Event(), threading.Event()
    got: list[bytes] = []

    async def client(url: str) -> None:
        got.append(await anyio.to_thread.run_sync(read_all_after, url, cassette, part, stopping))

    # (The server's block ends first, then the client's task is awaited.)
    async with (
        anyio.create_task_group() as group,
        serve_cassettes([cassette], server=server) as url,
    ):
        group.start_soon(client, url)
        await anyio.to_thread.run_sync(part.wait)
        assert server.answering == 1  # the stream, still being written
        stopping.set()  # the block ends now, with the write under way
    assert len(got[0]) == len(cassette.interactions[-1].response.wire)
    assert server.unplayed() == []
    assert server.answering == 0


def test_answers_being_written_are_counted_until_reported_or_closed() -> None:
    cassette = load_cassette(CASSETTES / "plain-chat.json")
    server = g.cassette.ReplayServer([cassette], speed=0)
    login = cassette.interactions[0]
    first, second = server.connection(), server.connection()
    [*_, done] = first.receive_data(wire(login, {}))
    assert isinstance(done, g.cassette.ReplayDelivered)
    second.receive_data(wire(login, {}))
    assert server.answering == 2
    first.delivered(done)
    first.delivered(done)  # (reported twice: counted once)
    assert server.answering == 1
    second.close()  # gone before its answer went out: never to be written
    assert server.answering == 0
    assert server.unplayed()[0][1:] == (2, "text")


def test_a_signal_lets_the_answer_being_written_go_out_whole(tmp_path: Path) -> None:
    # As above, for `gptalk replay --serve` stopped by a signal while it
    # writes the stream that its client then reads whole: exit 0, played.
    path = big_stream_cassette(tmp_path)
    cassette = load_cassette(path)
    part, stopping = threading.Event(), threading.Event()
    got: list[bytes] = []
    with listening("replay", "--serve", "--speed", "0", str(path)) as (process, url):
        reader = threading.Thread(
            target=lambda: got.append(read_all_after(url, cassette, part, stopping))
        )
        reader.start()
        assert part.wait(30)
        process.send_signal(signal.SIGINT)
        stopping.set()
        reader.join(60)
        code = process.wait(timeout=15)
        assert process.stderr is not None
        errors = process.stderr.read()
    assert len(got[0]) == len(cassette.interactions[-1].response.wire)
    assert code == 0, errors
    assert "unplayed" not in errors
