"""Proxies from the environment (HTTP_PROXY, HTTPS_PROXY, ALL_PROXY, NO_PROXY),
as httpx reads them with ``trust_env=True``: through a real proxy.py that
wants credentials, so a chat that went around it and one that went through it
cannot be told apart by luck."""

from __future__ import annotations

import io
import os
import ssl
from collections.abc import Iterator
from typing import Any

import pytest

import gptalk_proto as g
import gptalk_proto.server
from gptalk_transports import Client, Origin, ProxyError, ProxyURL, RetryPolicy
from gptalk_transports._backends.sync import BlockingBackend
from gptalk_transports._cli import main
from gptalk_transports._env_proxy import environment_proxy
from gptalk_transports._sync.connector import SyncConnector

from . import clients
from .test_proxies import PASSWORD, USER, assert_no_secrets, proxy_py, recording_proxy

PROMPT = "Hello through the environment's proxy"
NO_RETRY = RetryPolicy(retries=0)
VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No proxy variable but the test's own (in either case)."""
    for name in list(os.environ):
        if name.lower().endswith("_proxy") or name == "REQUEST_METHOD":
            monkeypatch.delenv(name)


@pytest.fixture(scope="module")
def guarded_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """proxy.py with --basic-auth USER:PASSWORD; yields its port."""
    yield from proxy_py(tmp_path_factory.mktemp("env-proxy"), "--basic-auth", f"{USER}:{PASSWORD}")


def good(port: int) -> str:
    return f"http://{USER}:{PASSWORD}@127.0.0.1:{port}"


def bad(port: int) -> str:
    """The guarded proxy with wrong credentials: a chat through it fails."""
    return f"http://{USER}:wrong-{PASSWORD}@127.0.0.1:{port}"


def proxy_of(url: str) -> str | None:
    found = environment_proxy(Origin.parse(url))
    return None if found is None else f"{found.host}:{found.port}"


# -- through a real proxy, on every client ---------------------------------------------------


@pytest.mark.parametrize("kind", clients.KINDS)
def test_the_environment_s_proxy_is_used(
    kind: str, reference_url: str, guarded_proxy: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", bad(guarded_proxy))
    with pytest.raises(ProxyError) as caught:
        clients.stream(kind, reference_url, PROMPT, retry=NO_RETRY, timeout=10)
    assert_no_secrets(caught.value)
    monkeypatch.setenv("http_proxy", good(guarded_proxy))  # lower case wins
    assert clients.stream(kind, reference_url, PROMPT).text == g.server.expected_reply(PROMPT)


@pytest.mark.parametrize("kind", clients.KINDS)
def test_https_goes_through_https_proxy_or_all_proxy(
    kind: str,
    tls_reference_url: str,
    tls_client_context: ssl.SSLContext,
    guarded_proxy: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTP_PROXY", bad(guarded_proxy))  # not for https
    monkeypatch.setenv("ALL_PROXY", good(guarded_proxy))
    kwargs: dict[str, Any] = {"verify": tls_client_context}
    outcome = clients.stream(kind, tls_reference_url, PROMPT, **kwargs)
    assert outcome.text == g.server.expected_reply(PROMPT)
    monkeypatch.setenv("HTTPS_PROXY", bad(guarded_proxy))  # before ALL_PROXY
    with pytest.raises(ProxyError):
        clients.stream(kind, tls_reference_url, PROMPT, retry=NO_RETRY, timeout=10, **kwargs)


@pytest.mark.parametrize("kind", clients.KINDS)
def test_no_proxy_trust_env_and_an_explicit_proxy_go_around_it(
    kind: str, reference_url: str, guarded_proxy: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALL_PROXY", bad(guarded_proxy))
    expected = g.server.expected_reply(PROMPT)
    assert clients.stream(kind, reference_url, PROMPT, trust_env=False).text == expected
    proxy = good(guarded_proxy)
    assert clients.stream(kind, reference_url, PROMPT, proxy=proxy).text == expected
    monkeypatch.setenv("NO_PROXY", "example.com, 127.0.0.1")
    assert clients.stream(kind, reference_url, PROMPT).text == expected


def test_a_base_path_goes_in_absolute_form_through_the_environment_s_proxy(
    reference_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    authority = reference_url.removeprefix("http://")
    with recording_proxy() as (port, heads):
        monkeypatch.setenv("HTTP_PROXY", f"127.0.0.1:{port}")  # no scheme: an HTTP proxy
        with pytest.raises(g.GPTalkError):
            clients.stream("blocking", reference_url + "/base", retry=NO_RETRY, timeout=10)
    assert len(heads) == 1
    target = heads[0].split(b" ")[1].decode()
    assert target == f"http://{authority}/base{g.LOGIN_PATH}"


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        code = main(list(argv), stdout=out, stderr=err)
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue()


def test_the_cli_uses_it_unless_told_not_to(
    reference_url: str, guarded_proxy: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", bad(guarded_proxy))
    code, out, err = run_cli("chat", "--url", reference_url, "--total-timeout", "10", "hi")
    assert code == 3, err  # network: the proxy refused
    assert f"127.0.0.1:{guarded_proxy}" in err
    assert PASSWORD not in err
    code, out, err = run_cli("chat", "--url", reference_url, "--no-env-proxy", "hi")
    assert (code, out) == (0, g.server.expected_reply("hi") + "\n"), err
    # The built-in server runs in-process: no proxy between.
    code, out, err = run_cli("chat", "hi")
    assert (code, out) == (0, g.server.expected_reply("hi") + "\n"), err


# -- what the variables mean ------------------------------------------------------------------


def test_none_set_means_no_proxy() -> None:
    assert proxy_of("http://example.com") is None


def test_the_scheme_s_own_variable_then_all_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALL_PROXY", "socks5h://all:1080")
    monkeypatch.setenv("HTTP_PROXY", "http://plain:3128")
    assert proxy_of("http://example.com") == "plain:3128"
    assert proxy_of("https://example.com") == "all:1080"
    monkeypatch.setenv("HTTPS_PROXY", "secure:3129")  # no scheme: HTTP
    found = environment_proxy(Origin.parse("https://example.com"))
    assert found == ProxyURL("http", "secure", 3129, None, None)


def test_lower_case_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://upper:1")
    monkeypatch.setenv("http_proxy", "http://lower:2")
    assert proxy_of("http://example.com") == "lower:2"
    monkeypatch.setenv("no_proxy", "example.com")
    monkeypatch.setenv("NO_PROXY", "")
    assert proxy_of("http://example.com") is None


def test_http_proxy_is_ignored_under_cgi(monkeypatch: pytest.MonkeyPatch) -> None:
    """httpoxy (CVE-2016-1000110): a request's Proxy: header becomes HTTP_PROXY."""
    monkeypatch.setenv("HTTP_PROXY", "http://attacker:1")
    monkeypatch.setenv("REQUEST_METHOD", "GET")
    assert proxy_of("http://example.com") is None


@pytest.mark.parametrize(
    ("no_proxy", "url", "bypassed"),
    [
        ("*", "http://anything.example", True),
        ("a.test, *", "http://anything.example", True),
        ("example.com", "http://example.com", True),
        ("example.com", "http://api.example.com:8080", True),
        (".example.com", "http://example.com", True),
        (".example.com", "http://deep.api.example.com", True),
        ("example.com", "http://badexample.com", False),
        ("EXAMPLE.com", "http://Example.COM", True),
        ("example.com:8080", "http://example.com:8080", True),
        ("example.com:8080", "http://example.com:9090", False),
        ("example.com:80", "http://example.com", True),
        ("127.0.0.1", "http://127.0.0.1:5000", True),
        ("127.0.0.1", "http://127.0.0.12:5000", False),
        ("::1", "http://[::1]:5000", True),
        ("[::1]", "http://[::1]:5000", True),
        ("[::1]:5000", "http://[::1]:5000", True),
        ("localhost", "http://localhost:8000", True),
        ("localhost", "http://127.0.0.1:8000", False),
        (" , ,", "http://example.com", False),
        ("other.test,example.com", "https://www.example.com", True),
    ],
)
def test_no_proxy_entries(
    no_proxy: str, url: str, bypassed: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALL_PROXY", "http://proxy:3128")
    monkeypatch.setenv("NO_PROXY", no_proxy)
    assert proxy_of(url) == (None if bypassed else "proxy:3128")


def test_a_bad_value_is_named_without_its_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", f"ftp://{USER}:{PASSWORD}@proxy:21")
    with pytest.raises(g.LocalProtocolError, match="HTTPS_PROXY") as caught:
        environment_proxy(Origin.parse("https://example.com"))
    assert_no_secrets(caught.value)


def test_a_given_connector_ignores_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Replay brings its own connector: a bad variable must not break it."""
    monkeypatch.setenv("HTTP_PROXY", "ftp://nonsense")
    connector = SyncConnector(BlockingBackend(), Origin.parse("http://127.0.0.1:1"))
    with Client("http://127.0.0.1:1", connector=connector) as client:
        assert client.proxy is None
    with pytest.raises(g.LocalProtocolError, match="HTTP_PROXY"):
        Client("http://127.0.0.1:1")


def test_every_variable_is_read_in_both_cases(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in VARIABLES[:3]:
        for variable in (name, name.upper()):
            monkeypatch.setenv(variable, "http://p:9")
            scheme = "https" if name == "https_proxy" else "http"
            assert proxy_of(f"{scheme}://example.com") == "p:9", variable
            monkeypatch.delenv(variable)
