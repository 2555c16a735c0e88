"""The recording proxy's way to its upstream: TLS verified (the system
store by default, a CA bundle or context when given), ``--proxy`` honoured,
``--secret`` redacted; ``record_through_proxy`` and ``gptalk record
--listen``, over loopback."""

from __future__ import annotations

import http.client
import json
import signal
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import anyio
import pytest

import gptalk_proto as g
import gptalk_proto.server
from gptalk_transports import load_cassette, record_through_proxy_in_thread, replay_session

from .console import listening
from .test_proxies import free_port, proxy_py
from .test_record_proxy import by_hand, check_cassette

PROMPT = "Hello over TLS through the proxy"
LOGIN = json.dumps({"fingerprint": "0123456789abcdef0123456789abcdef", "platform": "fingerprint"})


def _login_through(url: str) -> tuple[int, str]:
    """One login through the proxy at ``url``: (status, the body's msg)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
    try:
        conn.request("POST", g.LOGIN_PATH, body=LOGIN, headers={"content-type": "application/json"})
        response = conn.getresponse()
        return response.status, json.loads(response.read())["msg"]
    finally:
        conn.close()


def test_an_upstream_the_system_store_does_not_trust_is_a_502(tls_reference_url: str) -> None:
    with record_through_proxy_in_thread(tls_reference_url, trust_env=False) as run:
        status, message = _login_through(run.url)
    assert status == 502
    assert "verification failed" in message
    assert run.cassette is not None
    assert run.cassette.interactions == ()


def test_an_upstream_trusted_by_the_given_ca_is_recorded(
    tls_reference_url: str, tls_ca_file: str
) -> None:
    with record_through_proxy_in_thread(
        tls_reference_url, trust_env=False, verify=tls_ca_file
    ) as run:
        got, tokens = by_hand(run.url, PROMPT)
    assert got == g.server.expected_reply(PROMPT)
    assert run.cassette is not None
    assert run.cassette.origin == tls_reference_url
    check_cassette(run.cassette, PROMPT, got, tokens)


@pytest.fixture(scope="module")
def http_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """proxy.py on loopback, without authentication; yields its port."""
    yield from proxy_py(tmp_path_factory.mktemp("proxy.py"))


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_the_upstream_is_reached_through_proxy(
    scheme: str,
    reference_url: str,
    tls_reference_url: str,
    tls_ca_file: str,
    http_proxy: int,
) -> None:
    """Through proxy.py (absolute-form for http, a CONNECT tunnel for
    https) the chat is recorded; through a proxy nobody listens on, the
    client gets a 502 naming the proxy: the setting is not ignored."""
    upstream = reference_url if scheme == "http" else tls_reference_url
    with record_through_proxy_in_thread(
        upstream, proxy=f"http://127.0.0.1:{http_proxy}", trust_env=False, verify=tls_ca_file
    ) as run:
        got, tokens = by_hand(run.url, PROMPT)
    assert run.cassette is not None
    check_cassette(run.cassette, PROMPT, got, tokens)
    nobody = free_port()
    with record_through_proxy_in_thread(
        upstream, proxy=f"http://127.0.0.1:{nobody}", trust_env=False, verify=tls_ca_file
    ) as run:
        status, message = _login_through(run.url)
    assert status == 502
    assert "proxy" in message


def test_cli_listen_verifies_tls_and_redacts_secrets(
    tls_reference_url: str, tls_ca_file: str, tmp_path: Path
) -> None:
    """``gptalk record --listen --url https://...``: without the CA in its
    trust store the client gets a 502; with it (``SSL_CERT_FILE``, read by
    the system store), the chat is recorded and each ``--secret`` is
    redacted from the cassette; ``--port`` is the port it listens on."""
    output = tmp_path / "tls.json"
    secret = "hunter2-sesame"
    prompt = f"my password is {secret}, keep it"
    base = ("record", "--listen", "--url", tls_reference_url, "--no-env-proxy")
    with listening(*base, "-o", str(output)) as (process, url):
        assert _login_through(url)[0] == 502
        process.send_signal(signal.SIGTERM)
        # Nothing was answered, so nothing recorded: no cassette, exit 6.
        assert process.wait(timeout=15) == 6
    assert not output.exists()
    port = free_port()
    with listening(
        *base,
        "-o",
        str(output),
        "--secret",
        secret,
        "--port",
        str(port),
        env={"SSL_CERT_FILE": tls_ca_file},
    ) as (process, url):
        assert url == f"http://127.0.0.1:{port}"
        got, _ = by_hand(url, prompt)
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=15) == 0
    assert secret in got  # the service echoed it
    text = output.read_text(encoding="utf-8")
    assert secret not in text
    [result] = anyio.run(replay_session, load_cassette(output))
    assert result.error is None
    # The placeholder keeps the secret's length: the same reply around it.
    assert secret not in result.text
    assert len(result.text) == len(got)
    assert result.text.split(" ")[:4] == got.split(" ")[:4]
