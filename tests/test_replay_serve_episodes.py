"""``gptalk replay --serve --episodes``: a cassette several clients recorded
through the recording proxy, one after the other, replayed to clients that
come in another order or play part of it.  Without the flag each client
plays the cassette whole from its first step (the default, unchanged): only
the recorded order replays."""

from __future__ import annotations

import http.client
import json
import os
import signal
from pathlib import Path
from urllib.parse import urlsplit

import pytest

import gptalk_proto as g
import gptalk_proto.server
from gptalk_transports import record_through_proxy_in_thread, serve_in_thread
from gptalk_transports._cassettes import save_cassette

from .test_replay_server import _stop, replay_serving

JSON = {"content-type": "application/json"}


def chat(url: str, prompt: str) -> int:
    """Login, text and stream by http.client: 200, or the first other status."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)

    def call(method: str, path: str, body: object = None, **headers: str) -> tuple[int, bytes]:
        data = None if body is None else json.dumps(body).encode()
        conn.request(method, path, body=data, headers={**JSON, **headers} if data else headers)
        response = conn.getresponse()
        return response.status, response.read()

    try:
        login = {"fingerprint": os.urandom(16).hex(), "platform": "fingerprint"}
        status, answer = call("POST", "/api/chatgpt/user/login", login)
        if status != 200:
            return status
        bearer = {"authorization": f"Bearer {json.loads(answer)['data']['token']}"}
        text = {"content": prompt, "accept": "stream"}
        status, answer = call("POST", "/api/chatgpt/chatapi/text", text, **bearer)
        if status != 200:
            return status
        stream = json.loads(answer)["data"]["token"]
        status, answer = call("GET", f"/api/chatgpt/chatapi/stream?token={stream}")
        if status == 200:
            events = [
                line[6:] for line in answer.decode().splitlines() if line.startswith("data: {")
            ]
            assert json.loads(events[-1])["content"] == g.server.expected_reply(prompt)
        return status
    finally:
        conn.close()


@pytest.fixture(scope="module")
def two_clients(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Clients A then B, each a login and a chat, recorded through the proxy."""
    with serve_in_thread() as service, record_through_proxy_in_thread(service) as proxy:
        assert chat(proxy.url, "Client A") == 200
        assert chat(proxy.url, "Client B") == 200
    assert proxy.cassette is not None
    kinds = [item.kind for item in proxy.cassette.interactions]
    assert kinds == ["login", "text", "stream"] * 2
    path = tmp_path_factory.mktemp("episodes") / "two-clients.json"
    save_cassette(path, proxy.cassette)
    return path


def test_without_episodes_only_the_recorded_order_replays(two_clients: Path) -> None:
    with replay_serving("--speed", "0", "--allow-unplayed", str(two_clients)) as (process, url):
        assert chat(url, "Client B") == g.cassette.MISMATCH_STATUS
        _stop(process, signal.SIGTERM)


@pytest.mark.parametrize("order", [["Client B", "Client A"], ["Client A", "Client B"]], ids=str)
def test_episodes_replay_in_any_order(two_clients: Path, order: list[str]) -> None:
    args = ("--speed", "0", "--episodes", "--once", str(two_clients))
    with replay_serving(*args) as (process, url):
        for prompt in order:
            assert chat(url, prompt) == 200
        code = process.wait(timeout=15)  # --once: every step played
        assert process.stderr is not None
        errors = process.stderr.read()
    assert code == 0, errors
    assert "unplayed" not in errors


def test_episodes_owe_only_the_ones_begun(two_clients: Path) -> None:
    with replay_serving("--speed", "0", "--episodes", str(two_clients)) as (process, url):
        assert chat(url, "Client B") == 200
        assert chat(url, "Nobody asked this") == g.cassette.MISMATCH_STATUS
        code, errors = _stop(process, signal.SIGTERM)
    # The second client's login began the first client's login episode,
    # played whole; its chat matched nothing: nothing begun is unplayed.
    assert code == 0, errors
    assert "unplayed" not in errors
    assert "body.content" in errors  # the mismatch's line
