"""Recording as transport: what reaches the server is what the cassette keeps.

A recording that reached no server is no cassette; a recording made through an
HTTP proxy (absolute-form targets, Proxy-Authorization) keeps what the service
saw, so it replays and verifies like one made directly.
"""

from __future__ import annotations

import base64
import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

import gptalk_proto as g
from gptalk_proto._recorder import origin_form
from gptalk_transports._cassettes import load_cassette, save_cassette
from gptalk_transports._cli import EXIT_CODES
from gptalk_transports._cli_cassette import verify_cassette
from gptalk_transports._session import record_session, replay_session

from .console import gptalk
from .test_proxies import PASSWORD, USER, free_port, proxy_py

# -- nothing reached: nothing written ------------------------------------------------------


def test_recording_an_unreachable_server_writes_nothing_and_exits_3(tmp_path: Path) -> None:
    out = tmp_path / "u.json"
    port = free_port()
    done = gptalk("record", "-o", str(out), "--url", f"http://127.0.0.1:{port}", "hi")
    assert done.returncode == EXIT_CODES["network"], done.stderr
    assert "recorded 0 exchanges" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines[-1].startswith("gptalk: error: "), done.stderr
    assert "Traceback" not in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [], "no cassette, no .tmp"


def test_a_served_fault_is_still_recorded(tmp_path: Path) -> None:
    # The server's own answers, faults included, are exchanges: kept.
    out = tmp_path / "cut.json"
    done = gptalk("record", "-o", str(out), "--fault", "cut=3", "hi")
    assert done.returncode == 0, done.stderr
    cassette = load_cassette(out)
    assert [item.kind for item in cassette.interactions] == ["login", "text", "stream"]
    assert cassette.interactions[-1].response.end == "closed"


# -- through an HTTP proxy ---------------------------------------------------------------


@pytest.fixture(scope="module")
def anonymous_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    yield from proxy_py(tmp_path_factory.mktemp("anonymous"))


@pytest.fixture(scope="module")
def guarded_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    yield from proxy_py(tmp_path_factory.mktemp("guarded"), "--basic-auth", f"{USER}:{PASSWORD}")


@pytest.fixture
def proxies(anonymous_proxy: int, guarded_proxy: int) -> dict[str, str]:
    """A proxy.py without and one with Basic credentials: name -> proxy URL."""
    return {
        "anonymous": f"http://127.0.0.1:{anonymous_proxy}",
        "credentials": f"http://{USER}:{PASSWORD}@127.0.0.1:{guarded_proxy}",
    }


def record(prompts: list[str], **kwargs: Any) -> tuple[g.Cassette, list[Any]]:
    return anyio.run(functools.partial(record_session, prompts, **kwargs))


@pytest.mark.parametrize("which", ["anonymous", "credentials"])
def test_a_recording_through_an_http_proxy_replays(
    which: str, proxies: dict[str, str], reference_url: str, tmp_path: Path
) -> None:
    out = tmp_path / "proxied.json"
    done = gptalk("record", "-o", str(out), "--url", reference_url, "--proxy", proxies[which], "hi")
    assert done.returncode == 0, done.stderr
    assert done.stdout == g.expected_reply("hi") + "\n"
    cassette = load_cassette(out)
    # Origin-form targets, as the service saw them: the steps have their kinds.
    assert [item.kind for item in cassette.interactions] == ["login", "text", "stream"]
    assert all(item.request.target.startswith("/api/") for item in cassette.interactions)
    # The proxy's credentials were for the proxy: not in the cassette at all.
    names = {name.lower() for item in cassette.interactions for name, _ in item.request.headers}
    assert "proxy-authorization" not in names
    text = out.read_text(encoding="utf-8")
    token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    for secret in (USER, PASSWORD, token):
        assert secret not in text
    replayed = gptalk("replay", "--speed", "0", str(out))
    assert replayed.returncode == 0, replayed.stderr
    assert replayed.stdout == g.expected_reply("hi") + "\n"
    verified = gptalk("cassette", "verify", str(out))
    assert verified.returncode == 0, verified.stdout


def test_a_proxied_session_replays_in_process(
    proxies: dict[str, str], reference_url: str, tmp_path: Path
) -> None:
    cassette, results = record(["one", "two"], url=reference_url, proxy=proxies["credentials"])
    assert [r.error for r in results] == [None, None]
    replayed = anyio.run(replay_session, cassette)
    assert [(r.prompt, r.text) for r in replayed] == [(r.prompt, r.text) for r in results]
    save_cassette(tmp_path / "two.json", cassette)
    _, verified = verify_cassette(tmp_path / "two.json")
    assert [r.text for r in verified] == [r.text for r in results]


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (b"/api/x?token=1", b"/api/x?token=1"),
        (b"http://127.0.0.1:8080/api/x?token=1", b"/api/x?token=1"),
        (b"HTTP://host/api", b"/api"),
        (b"http://host", b"/"),
        (b"http://host?q=1", b"/?q=1"),
        (b"https://user@host:1/a/b", b"/a/b"),
        (b"*", b"*"),
    ],
)
def test_origin_form(target: bytes, expected: bytes) -> None:
    assert origin_form(target) == expected
