"""TLS on every client kind, against the reference server behind a trustme CA."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from typing import NamedTuple

import pytest
import trustme

import gptalk_proto as g
import gptalk_proto.server
from gptalk_transports import (
    AsyncClient,
    Client,
    InsecureTLSWarning,
    RetryPolicy,
    TLSError,
    TLSVerificationError,
)
from gptalk_transports._server.refserver import serve_in_thread

from . import clients

PROMPT = "Hello over TLS"
NO_RETRY = RetryPolicy(retries=0)


def _check_chat(outcome: clients.Outcome, prompt: str = PROMPT) -> None:
    assert outcome.text == g.server.expected_reply(prompt)
    assert "".join(outcome.deltas) == outcome.text
    assert outcome.retries == 0
    assert outcome.connections == 1  # login, text and stream on one TLS connection


@pytest.mark.parametrize("kind", clients.KINDS)
def test_chat_with_a_context_trusting_the_ca(
    kind: str, tls_reference_url: str, tls_client_context: ssl.SSLContext, no_leaks: None
) -> None:
    assert tls_reference_url.startswith("https://127.0.0.1:")
    _check_chat(clients.stream(kind, tls_reference_url, PROMPT, verify=tls_client_context))


@pytest.mark.parametrize("kind", clients.KINDS)
def test_chat_with_a_ca_bundle_path(
    kind: str, tls_reference_url: str, tls_ca_file: str, no_leaks: None
) -> None:
    _check_chat(clients.stream(kind, tls_reference_url, PROMPT, verify=tls_ca_file))


@pytest.mark.parametrize("kind", clients.KINDS)
def test_the_system_store_does_not_trust_a_private_ca(
    kind: str, tls_reference_url: str, no_leaks: None
) -> None:
    deltas: list[str] = []
    with pytest.raises(TLSVerificationError, match="verification failed") as info:
        clients.stream(kind, tls_reference_url, PROMPT, into=deltas, retry=NO_RETRY)
    assert "127.0.0.1" in str(info.value)
    assert deltas == []


@pytest.fixture(scope="module")
def other_host_url(tls_ca: trustme.CA) -> Iterator[str]:
    """A server whose certificate (from the trusted CA) is for example.org only."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls_ca.issue_cert("example.org").configure_cert(context)
    with serve_in_thread(ssl_context=context) as url:
        yield url


@pytest.mark.parametrize("kind", clients.KINDS)
def test_a_certificate_for_another_host_is_refused(
    kind: str, other_host_url: str, tls_client_context: ssl.SSLContext, no_leaks: None
) -> None:
    with pytest.raises(TLSVerificationError, match="verification failed"):
        clients.stream(kind, other_host_url, PROMPT, verify=tls_client_context, retry=NO_RETRY)


@pytest.mark.parametrize("kind", clients.KINDS)
def test_tls_to_a_plain_http_server_is_a_tls_error(
    kind: str, reference_url: str, tls_client_context: ssl.SSLContext, no_leaks: None
) -> None:
    url = reference_url.replace("http://", "https://", 1)
    with pytest.raises(TLSError) as info:
        clients.stream(kind, url, PROMPT, verify=tls_client_context, retry=NO_RETRY, timeout=5)
    assert not isinstance(info.value, TLSVerificationError)


@pytest.mark.parametrize("kind", clients.KINDS)
def test_verify_false_warns_at_construction_and_works(
    kind: str, tls_reference_url: str, no_leaks: None
) -> None:
    warned_at: list[str] = []
    if kind == "blocking":
        with pytest.warns(InsecureTLSWarning, match="verification is turned off") as record:
            client = Client(tls_reference_url, verify=False)
        warned_at.extend(w.filename for w in record)
        with client:
            text, opened = client.chat(PROMPT), client.connections_opened
    else:

        async def main(backend: str) -> tuple[str, int]:
            with pytest.warns(InsecureTLSWarning, match="verification is turned off") as record:
                client = AsyncClient(tls_reference_url, backend=backend, verify=False)
            warned_at.extend(w.filename for w in record)
            async with client:
                return await client.chat(PROMPT), client.connections_opened

        text, opened = clients.run_async(kind, main)
    assert text == g.server.expected_reply(PROMPT)
    assert opened == 1
    # The warning points at the line that built the client, not into the library.
    assert warned_at == [__file__]


class Handshakes(NamedTuple):
    """What a server saw of its clients' TLS handshakes."""

    server_names: list[str | None]
    connections: list[ssl.SSLObject]

    def alpn(self) -> list[str | None]:
        return [conn.selected_alpn_protocol() for conn in self.connections]


def _recording_context(ca: trustme.CA, seen: Handshakes) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    # The server prefers h2: a client offering it would get it, so the check
    # below also catches a client offering more than HTTP/1.1.
    context.set_alpn_protocols(["h2", "http/1.1"])

    def sni(conn: ssl.SSLObject, name: str | None, _: ssl.SSLContext) -> None:
        seen.server_names.append(name)
        seen.connections.append(conn)

    context.sni_callback = sni
    return context


# No no_leaks here: resolving "localhost" on trio leaves an idle worker thread
# in trio's thread cache for 10 s, which is not a leak.
@pytest.mark.parametrize(("host", "sni"), [("localhost", "localhost"), ("127.0.0.1", None)])
@pytest.mark.parametrize("kind", clients.KINDS)
def test_sni_and_alpn(
    kind: str, host: str, sni: str | None, tls_ca: trustme.CA, tls_ca_file: str
) -> None:
    """SNI carries the URL's host name (never an IP literal, RFC 6066 section 3)
    and ALPN offers exactly http/1.1."""
    seen = Handshakes([], [])
    with serve_in_thread(ssl_context=_recording_context(tls_ca, seen), host=host) as url:
        assert url.startswith(f"https://{host}:")
        outcome = clients.stream(kind, url, PROMPT, verify=tls_ca_file)
    _check_chat(outcome)
    assert seen.server_names == [sni]
    assert seen.alpn() == ["http/1.1"]
