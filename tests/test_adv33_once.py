"""``gptalk replay --serve --once`` after a last step whose recorded server
closed the connection (a stream cut off mid-event): the answer that closes
counts as answered, so the command exits 0 once every step was played.  It
served on, never exiting, before."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

from gptalk_transports import load_cassette

from .console import listening
from .replay_cases import CASSETTES
from .test_replay_server_core import recorded_token, token_of, wire

CUT = CASSETTES / "cut-mid-event.json"


def test_once_exits_after_a_last_step_that_closes() -> None:
    cassette = load_cassette(CUT)
    last = cassette.interactions[-1]
    assert last.response.end != "complete"  # the case: the recording's server closed
    with listening("replay", "--serve", "--speed", "0", "--once", str(CUT)) as (process, url):
        parts = urlsplit(url)
        swap: dict[bytes, bytes] = {}
        with socket.create_connection((parts.hostname or "", parts.port or 0), 30) as sock:
            for item in cassette.interactions:
                sock.sendall(wire(item, swap))
                got = b""
                while len(got) < len(item.response.wire) and (data := sock.recv(65536)):
                    got += data
                assert got == item.response.wire or item.kind != "stream"
                if item.kind in ("login", "text"):
                    swap[recorded_token(item)] = token_of(got)
            assert sock.recv(1) == b""  # the server closed, as recorded
        code = process.wait(timeout=15)
        assert process.stderr is not None
        errors = process.stderr.read()
    assert code == 0, errors
    assert "unplayed" not in errors
