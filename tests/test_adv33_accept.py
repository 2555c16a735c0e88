"""A server whose process runs out of file descriptors (a client holding as
many connections as it may open) stops accepting for a while, says so once
on stderr, and serves again once connections end.  The shared accept loop
(anyio's listener.serve) ended at the first failed accept: `gptalk serve`
and `gptalk replay --serve` exited 70 with an internal error."""

from __future__ import annotations

import os
import resource
import signal
import socket
from urllib.parse import urlsplit

import pytest

from gptalk_transports import load_cassette

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


@pytest.mark.parametrize("command", COMMANDS.values(), ids=COMMANDS.keys())
def test_out_of_descriptors_the_server_waits_then_serves(command: list[str]) -> None:
    with listening(*command) as (process, url):
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
            assert (
                line
                == "gptalk: cannot accept connections: Too many open files; retrying every 0.1 s\n"
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
    assert "cannot accept" not in errors  # one line per run of failures
