"""``gptalk replay --serve``'s pace flags reach the server, and every
connection it serves has ``TCP_NODELAY`` (each recorded read leaves as its
own segment, not held back by Nagle's algorithm to join the next)."""

from __future__ import annotations

import json
import signal
import socket
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import pytest

import gptalk_proto as g
import gptalk_proto.cassette
from gptalk_transports import AsyncClient, load_cassette
from gptalk_transports._server import replay as replay_module
from gptalk_transports._server.replay import serve_cassettes

from .console import listening
from .test_replay_server import PLAIN, _by_hand, expected

#: The wait the edited cassette records before its stream's second read.
HOUR = 3600.0


def test_max_gap_caps_a_recorded_hour(tmp_path: Path) -> None:
    """A stream whose recording waited an hour between two reads plays
    through within the client's 30 s timeout under ``--max-gap 0.05``
    (without the cap the server would wait the hour: the client's timeout
    fails the test)."""
    raw: dict[str, Any] = json.loads(PLAIN.read_text(encoding="utf-8"))
    chunks = raw["interactions"][2]["chunks"]
    assert len(chunks) > 2
    for chunk in chunks[1:]:
        chunk["t"] += HOUR
    path = tmp_path / "an-hour.json"
    path.write_text(json.dumps(raw), encoding="utf-8")
    cassette = load_cassette(path)
    with listening("replay", "--serve", "--max-gap", "0.05", str(path)) as (process, url):
        text = _by_hand(url, cassette)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    assert text == anyio.run(expected, load_cassette(PLAIN))[0]


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_every_served_connection_has_tcp_nodelay(
    backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[int] = []
    original = replay_module._no_delay

    def spy(stream: anyio.abc.ByteStream) -> None:
        original(stream)
        raw = stream.extra(anyio.abc.SocketAttribute.raw_socket)
        seen.append(raw.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))

    monkeypatch.setattr(replay_module, "_no_delay", spy)
    cassette = load_cassette(PLAIN)
    server = g.cassette.ReplayServer([cassette], speed=0)

    async def main() -> str:
        async with (
            serve_cassettes([cassette], server=server) as url,
            AsyncClient(url, trust_env=False, backend=backend) as client,
        ):
            return await client.chat("Hello, how are you?")

    assert anyio.run(main, backend=backend) == anyio.run(expected, cassette)[0]
    assert seen  # every connection the chat used
    assert all(seen)


def test_once_with_nothing_to_play_exits_by_itself(tmp_path: Path) -> None:
    """A cassette of no steps is valid (``cassette verify`` says ok): every
    step of it was played from the start, so ``--once`` exits 0 after its
    ready line, as it does once a client played the last step (it waited
    for a signal, as without ``--once``)."""
    raw: dict[str, Any] = json.loads(PLAIN.read_text(encoding="utf-8"))
    raw["interactions"] = []
    path = tmp_path / "empty.json"
    path.write_text(json.dumps(raw), encoding="utf-8")
    with listening("replay", "--serve", "--once", str(path)) as (process, _):
        assert process.wait(timeout=15) == 0
        assert process.stderr is not None
        assert "unplayed" not in process.stderr.read()
