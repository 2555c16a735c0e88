"""A server whose process runs out of file descriptors (a client holding as
many connections as it may open) stops accepting for a while, says so once
on stderr, and serves again once connections end.  The shared accept loop
(anyio's listener.serve) ended at the first failed accept: `gptalk serve`
and `gptalk replay --serve` exited 70 with an internal error.  The recording
proxy, on asyncio's own listener, printed asyncio's traceback at every retry
(each second): a stderr nobody read then filled, and the whole proxy hung
in that write, its connections never closed and SIGTERM never handled."""

from __future__ import annotations

import os
import re
import resource
import signal
import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from gptalk_transports import load_cassette, serve_in_thread

from .console import listening, read_line
from .replay_cases import CASSETTES
from .test_replay_server_core import wire

LOGIN = load_cassette(CASSETTES / "plain-chat.json").interactions[0]

#: Connections the test opens past the descriptors the server has left.
OVER = 10

COMMANDS = {
    "replay --serve": ["replay", "--serve", "--speed", "0", str(CASSETTES / "plain-chat.json")],
    "serve": ["serve"],
}


#: Seconds between a listener's tries once an accept failed: asyncio's own
#: listener (the recording proxy's) waits a second.
RETRY = {"replay --serve": "0.1", "serve": "0.1", "record --listen": "1"}


@pytest.mark.parametrize("command", [*COMMANDS, "record --listen"])
def test_out_of_descriptors_the_server_waits_then_serves(
    command: str, tmp_path: Path, upstream: str
) -> None:
    args = COMMANDS.get(command) or [
        *("record", "--listen", "--url", upstream, "-o", str(tmp_path / "out.json")),
    ]
    with listening(*args) as (process, url):
        assert process.stderr is not None
        parts = urlsplit(url)
        address = (parts.hostname or "", parts.port or 0)
        # A few descriptors more than the server has open now.
        held = len(os.listdir(f"/proc/{process.pid}/fd"))
        limit = held + 4
        resource.prlimit(process.pid, resource.RLIMIT_NOFILE, (limit, limit))
        flood = [socket.create_connection(address, 30) for _ in range(limit - held + OVER)]
        try:
            # The event: the server said it cannot accept (it did not exit).
            line = read_line(process.stderr, timeout=30)
            assert line == (
                "gptalk: cannot accept connections: Too many open files (failure 1); "
                f"retrying every {RETRY[command]} s\n"
            )
            assert process.poll() is None
        finally:
            for sock in flood:
                sock.close()
        with socket.create_connection(address, 30) as sock:
            sock.sendall(wire(LOGIN))
            assert sock.recv(9) == b"HTTP/1.1 "
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=15)
        errors = process.stderr.read()
    assert "internal error" not in errors
    assert "Traceback" not in errors
    # Later failures (each retry, and again as the flood's queued connections
    # come and go) are told at the 2nd, 4th, 8th... only.
    told = [
        int(n) for n in re.findall(r"cannot accept connections: .* \(failure ([0-9]+)\)", errors)
    ]
    assert told == [2**k for k in range(1, len(told) + 1)], errors


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    with serve_in_thread() as url:
        yield url
