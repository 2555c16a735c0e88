"""Recording as transport: what reaches the server is what the cassette keeps.

A recording that reached no server is no cassette; a recording made through an
HTTP proxy (absolute-form targets, Proxy-Authorization) keeps what the service
saw, so it replays and verifies like one made directly.
"""

from __future__ import annotations

import base64
import functools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import anyio
import pytest

import gptalk_proto as g
import gptalk_proto.cassette
import gptalk_proto.server
from gptalk_proto.cassette._recorder import origin_form
from gptalk_transports._cassettes import load_cassette, save_cassette
from gptalk_transports._cli.cassette import verify_cassette
from gptalk_transports._cli.exits import EXIT_CODES
from gptalk_transports._session import record_session, replay_session

from .console import gptalk
from .test_proxies import PASSWORD, USER, free_port, proxy_py

SHIPPED = Path(__file__).resolve().parent.parent / "cassettes" / "plain-chat.json"

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


def record(prompts: list[str], **kwargs: Any) -> tuple[g.cassette.Cassette, list[Any]]:
    return anyio.run(functools.partial(record_session, prompts, **kwargs))


@pytest.mark.parametrize("which", ["anonymous", "credentials"])
def test_a_recording_through_an_http_proxy_replays(
    which: str, proxies: dict[str, str], reference_url: str, tmp_path: Path
) -> None:
    out = tmp_path / "proxied.json"
    done = gptalk("record", "-o", str(out), "--url", reference_url, "--proxy", proxies[which], "hi")
    assert done.returncode == 0, done.stderr
    assert done.stdout == g.server.expected_reply("hi") + "\n"
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
    assert replayed.stdout == g.server.expected_reply("hi") + "\n"
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


# -- secrets the user names, and secrets in the URL -------------------------------------


@pytest.mark.parametrize("secret", ["a", "1", "abc", ""])
def test_a_too_short_secret_is_a_usage_error(secret: str, tmp_path: Path) -> None:
    out = tmp_path / "s.json"
    done = gptalk("record", "-o", str(out), "--secret", "long-enough", "--secret", secret, "hi")
    assert done.returncode == EXIT_CODES["usage"], done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("gptalk: error: secret 2 is too short to redact")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("secret", ["chunked", "data", "content", "1234"])
def test_a_secret_spelled_like_syntax_records_and_verifies(secret: str, tmp_path: Path) -> None:
    out = tmp_path / "s.json"
    prompt = "hi content data chunked 1234"
    done = gptalk("record", "-o", str(out), "--secret", secret, prompt)
    assert done.returncode == 0, done.stderr
    verified = gptalk("cassette", "verify", str(out))
    assert verified.returncode == 0, verified.stdout
    replayed = gptalk("replay", "--speed", "0", str(out))
    assert replayed.returncode == 0, replayed.stderr
    assert secret not in replayed.stdout
    assert replayed.stdout.startswith("Hello! You said: ")


API_KEY = "Zk3Jq9sLm2PwXv7R"


def test_query_values_of_the_url_are_redacted(reference_url: str, tmp_path: Path) -> None:
    out = tmp_path / "k.json"
    url = f"{reference_url}/?apikey={API_KEY}&region=eu-west-1"
    done = gptalk("record", "-o", str(out), "--url", url, "hi")
    assert done.returncode == 0, done.stderr
    assert API_KEY not in out.read_text(encoding="utf-8")
    cassette = load_cassette(out)
    assert cassette.origin.startswith(f"{reference_url}/?apikey=<secret-1>")
    assert cassette.origin.endswith("&region=<x2>.....")  # a query value is a value
    linted = gptalk("cassette", "lint", str(out))
    assert linted.returncode == 0, linted.stdout
    assert gptalk("cassette", "verify", str(out)).returncode == 0

    har = tmp_path / "k.har"
    assert gptalk("cassette", "to-har", str(out), "-o", str(har)).returncode == 0
    assert API_KEY not in har.read_text(encoding="utf-8")
    check_har_urls(json.loads(har.read_text(encoding="utf-8")), cassette)

    # Unredacted, lint names the URL (and not the key).
    raw = tmp_path / "raw.json"
    assert gptalk("record", "--no-redact", "-o", str(raw), "--url", url, "hi").returncode == 0
    linted = gptalk("cassette", "lint", str(raw))
    assert linted.returncode == 1
    assert f"{raw}: origin: an unredacted query value" in linted.stdout
    assert API_KEY not in linted.stdout


def check_har_urls(har: dict[str, Any], cassette: g.cassette.Cassette) -> None:
    site = urlsplit(cassette.origin)
    entries = har["log"]["entries"]
    assert len(entries) == len(cassette.interactions)
    for entry, item in zip(entries, cassette.interactions, strict=True):
        url = entry["request"]["url"]
        parts = urlsplit(url)
        assert (parts.scheme, parts.netloc) == (site.scheme, site.netloc.rpartition("@")[2])
        target = urlsplit(item.request.target)
        assert (parts.path, parts.query, parts.fragment) == (target.path, target.query, "")
        assert urlunsplit(parts) == url
        assert entry["request"]["queryString"] == [
            {"name": k, "value": v} for k, v in parse_qsl(parts.query)
        ]


@pytest.mark.parametrize(
    "origin",
    [
        "http://127.0.0.1:8080",
        "http://127.0.0.1:8080/",
        "http://127.0.0.1:8080/?apikey=<secret-1>......",
        "https://user@example.com/prefix/?a=1&b=2",
        "http://example.com/prefix",
    ],
)
def test_har_urls_are_well_formed(origin: str) -> None:
    cassette = load_cassette(SHIPPED)
    cassette = g.cassette.Cassette(
        interactions=cassette.interactions,
        recorded_at=cassette.recorded_at,
        origin=origin,
        redacted=cassette.redacted,
    )
    har = g.cassette.to_har(cassette)
    check_har_urls(har, cassette)
    for entry in har["log"]["entries"]:
        assert "user@" not in entry["request"]["url"]
        assert entry["request"]["url"].count("?") <= 1


# -- the pytest plugin's secrets ----------------------------------------------------------

pytest_plugins = ("pytester",)


def test_plugin_refuses_one_string_as_secrets(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.gptalk_cassette(secrets="ab")
        def test_chat(gptalk_client):
            pass
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", timeout=120)
    # A usage error at collection, as for every other bad marker setting.
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    output = result.stdout.str() + result.stderr.str()
    assert "gptalk_cassette: secrets must be a list of strings, not one string" in output
    assert "pytest_plugin.py" not in output  # one clear line, no plugin traceback
    assert "Traceback" not in output
    assert not (pytester.path / "cassettes").exists()


def test_plugin_refuses_short_secrets_in_gptalk_config(pytester: pytest.Pytester) -> None:
    # The project-wide configuration is checked like the marker.
    pytester.makeconftest(
        """
        import pytest

        @pytest.fixture(scope="module")
        def gptalk_config():
            return {"secrets": ["abc"]}
        """
    )
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.gptalk_cassette
        def test_chat(gptalk_client):
            pass
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", timeout=120)
    result.assert_outcomes(errors=1)
    output = result.stdout.str()
    assert "gptalk_config: secret 1 is too short to redact" in output
    assert "pytest_plugin.py" not in output
    assert not (pytester.path / "cassettes").exists()
