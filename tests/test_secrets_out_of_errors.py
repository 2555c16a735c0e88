"""Issue 5: secrets never reach error messages, reprs or lint's reports, on either client."""

from __future__ import annotations

import json
import time
import traceback
from collections.abc import Iterator
from typing import Any

import anyio
import pytest

import gptalk_proto as g
import gptalk_proto.cassette
from gptalk_proto._scrub import scrub_error, scrub_text
from gptalk_proto.testing import play_responses
from gptalk_transports import AsyncClient, Client, Origin, ProxyError, RetryPolicy
from gptalk_transports._async.connector import AsyncConnector
from gptalk_transports._async.recording import AsyncRecordingConnector
from gptalk_transports._backends.anyio import AnyioBackend
from gptalk_transports._backends.sync import BlockingBackend
from gptalk_transports._cassettes import Recording
from gptalk_transports._server.refserver import serve_in_background, serve_in_thread
from gptalk_transports._sync.connector import SyncConnector
from gptalk_transports._sync.recording import SyncRecordingConnector

from . import clients
from .client_hostile_cases import ECHOES, NO_RETRY, NOW, echo_proxy_credentials, login, shown, text
from .console import gptalk
from .hostile_peer import request_kind, scripted_peer
from .redaction_cases import assert_absent, every, secrets_in, texts_of

# -- issue 5: secrets never reach errors, reprs or reports ------------------------------------

FAULTS = {
    "503-forever": (("status=503@text",), g.HTTPStatusError),
    "invalid-twice": (("envelope=invalid@text#1-2",), g.AuthInvalid),
    "cut-stream": (("cut=3",), g.StreamInterrupted),
}


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    todo = [error]
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        todo += [e for e in (current.__cause__, current.__context__) if e is not None]


def _error_texts(error: BaseException) -> list[str]:
    texts = ["".join(traceback.format_exception(error))]
    for link in _chain(error):
        texts += [str(link), repr(link), repr(link.args)]
        texts += [repr(value) for value in vars(link).values()]
    return texts


async def _faulted_async(
    faults: tuple[str, ...],
) -> tuple[g.cassette.Cassette, list[str], list[Any]]:
    texts: list[str] = []
    errors: list[Any] = []
    async with serve_in_background(faults=faults) as url:
        backend = AnyioBackend()
        recording = Recording(url)
        connector = AsyncRecordingConnector(AsyncConnector(backend, Origin.parse(url)), recording)
        async with AsyncClient(url, connector=connector, retry=RetryPolicy(backoff=0.0)) as client:
            for prompt in ("First prompt", "Second prompt"):
                try:
                    await client.chat(prompt)
                except g.GPTalkError as error:
                    errors.append(error)
                    texts += _error_texts(error)
            texts += [repr(client), str(client), repr(client.credentials)]
            texts.append(repr(client.connector))
            texts += _request_reprs(client.credentials)
    return recording.cassette(redact=False), texts, errors


def _faulted_blocking(faults: tuple[str, ...]) -> tuple[g.cassette.Cassette, list[str], list[Any]]:
    texts: list[str] = []
    errors: list[Any] = []
    with serve_in_thread(faults=faults) as url:
        recording = Recording(url)
        connector = SyncRecordingConnector(
            SyncConnector(BlockingBackend(), Origin.parse(url)), recording
        )
        with Client(url, connector=connector, retry=RetryPolicy(backoff=0.0)) as client:
            for prompt in ("First prompt", "Second prompt"):
                try:
                    client.chat(prompt)
                except g.GPTalkError as error:
                    errors.append(error)
                    texts += _error_texts(error)
            texts += [repr(client), str(client), repr(client.credentials)]
            texts += _request_reprs(client.credentials)
    return recording.cassette(redact=False), texts, errors


def _request_reprs(credentials: g.Credentials) -> list[str]:
    """The reprs of the requests a chat on these credentials makes (a text
    request with the bearer token when one is held, a login otherwise)."""
    texts = []
    chat = g.Chat("Third prompt", credentials=credentials, fingerprint="ab" * 16)
    assert chat.next_event() is g.SEND_REQUEST
    request = chat.next_request(now=time.time())
    texts += [repr(request), str(request), repr(chat.request)]
    fresh = g.Chat("Fourth prompt", credentials=g.Credentials(), fingerprint="cd" * 16)
    fresh.next_event()
    login = fresh.next_request(now=time.time())
    assert login.kind == "login"
    assert "cd" * 16 not in repr(login)
    texts.append(repr(login))
    return texts


@pytest.mark.parametrize("fault", list(FAULTS))
@pytest.mark.parametrize("kind", ["async", "blocking"])
def test_secrets_stay_out_of_errors_reprs_and_reports(
    kind: str, fault: str, no_leaks: None
) -> None:
    faults, expected = FAULTS[fault]
    if kind == "async":
        raw, texts, errors = anyio.run(_faulted_async, faults)
    else:
        raw, texts, errors = _faulted_blocking(faults)
    assert errors, "the faulted session raised"
    assert type(errors[0]) is expected
    found = secrets_in(raw)
    secrets = every(found)
    assert found["login-token"]
    assert found["fingerprint"]
    if fault == "cut-stream":
        assert found["stream-token"]
    redacted = g.cassette.redact(raw)
    findings = g.cassette.lint(raw)
    assert findings, "lint sees the unredacted secrets"
    texts += findings
    texts += texts_of(redacted)
    texts.append(json.dumps(g.cassette.to_har(redacted), indent=1))
    assert g.cassette.lint(redacted) == []
    assert_absent(secrets, texts)


# -- issue 10: a server that echoes what the client sent gets none of it printed ---------------
# (The chat takes its known secrets out of every error it raises, __cause__ and
# __context__ included; see gptalk_proto/_scrub.py.)


@pytest.mark.parametrize("name", list(ECHOES))
def test_core_keeps_echoed_secrets_out_of_errors(name: str) -> None:
    case = ECHOES[name]
    chat_secrets: list[str] = []
    chat = g.Chat("Hello", credentials=g.Credentials(), fingerprint="ab" * 16)
    conn = g.ClientConnection(
        chat, host="gptalk.test", proxy_headers=[("Proxy-Authorization", "Basic dTpwYXNzd29yZA==")]
    )
    before = {"login": [], "text": [login()], "stream": [login(), text()]}[case.kind]

    def script() -> Iterator[bytes]:
        for answer in [*before, case.answer]:
            request = chat.request
            assert request is not None
            chat_secrets.extend(value for _, value in chat.secrets)
            yield answer(request.target, request.headers, request.body)

    played = play_responses(conn, script(), now=NOW)
    assert type(played.error) is case.error, played.error
    secrets = {s for s in chat_secrets if len(s) >= 8} | {"ab" * 16}
    assert {"password", "dTpwYXNzd29yZA==", "Basic dTpwYXNzd29yZA=="} <= {
        value for _, value in chat.secrets
    }
    for text_ in shown(played.error):
        for secret in secrets:
            assert secret not in text_, f"{secret[:4]}... leaked into {text_[:200]!r}"
    assert "<" in str(played.error)  # the placeholder names what was there


@pytest.mark.parametrize("name", list(ECHOES))
def test_no_client_lets_an_echoed_secret_into_an_error(name: str) -> None:
    case = ECHOES[name]
    sent: set[str] = set()

    def answer(target: str, headers: tuple[tuple[str, str], ...], body: bytes) -> bytes:
        # Note every secret the client sent, then echo it.
        for header, value in headers:
            if header.lower() == "authorization":
                sent.add(value.partition(" ")[2])
        if request_kind(target) == "login":
            sent.add(json.loads(body)["fingerprint"])
        if request_kind(target) == "stream":
            sent.add(target.partition("token=")[2])
        return case.answer(target, headers, body)

    with scripted_peer({case.kind: answer}) as url:
        for kind in clients.KINDS:
            with pytest.raises(g.GPTalkError) as caught:
                clients.stream(kind, url, retry=NO_RETRY)
            assert isinstance(caught.value, case.error), (kind, caught.value)
            assert sent
            texts = shown(caught.value)
            for secret in sent:
                for text_ in texts:
                    assert secret not in text_, f"{kind}: a secret leaked into {text_[:300]!r}"


@pytest.mark.parametrize("name", list(ECHOES))
def test_the_command_never_prints_an_echoed_secret(name: str) -> None:
    case = ECHOES[name]
    sent: set[str] = set()

    def answer(target: str, headers: tuple[tuple[str, str], ...], body: bytes) -> bytes:
        sent.update(v.partition(" ")[2] for h, v in headers if h.lower() == "authorization")
        if request_kind(target) == "login":
            sent.add(json.loads(body)["fingerprint"])
        if request_kind(target) == "stream":
            sent.add(target.partition("token=")[2])
        return case.answer(target, headers, body)

    with scripted_peer({case.kind: answer}) as url:
        result = gptalk("chat", "--url", url, "Hello")
    assert result.returncode == 4, result.stderr
    assert sent
    for secret in sent:
        assert secret not in result.stderr + result.stdout, result.stderr
    assert result.stderr.count("<") >= 1, result.stderr  # a placeholder stands in


# -- proxy credentials ---------------------------------------------------------------------------

PROXY_USER, PROXY_PASSWORD = "alice", "s3cr3t-pa55word"
PROXY_BASIC = "YWxpY2U6czNjcjN0LXBhNTV3b3Jk"  # base64 of alice:s3cr3t-pa55word


def test_a_407_that_echoes_the_proxy_credentials_shows_them_nowhere() -> None:
    with scripted_peer({"any": echo_proxy_credentials}) as proxy_url:
        proxy = proxy_url.replace("http://", f"http://{PROXY_USER}:{PROXY_PASSWORD}@")
        secrets = (PROXY_PASSWORD, PROXY_BASIC, f"{PROXY_USER}:{PROXY_PASSWORD}")
        for kind in clients.KINDS:
            with pytest.raises(g.GPTalkError) as caught:
                clients.stream(kind, "http://gptalk.invalid", proxy=proxy, retry=NO_RETRY)
            assert type(caught.value) is ProxyError, (kind, caught.value)
            cause = caught.value.__cause__
            assert isinstance(cause, g.HTTPStatusError)
            assert cause.status == 407
            assert "proxy refused <proxy-credentials>" in cause.msg
            texts = shown(caught.value)
            for secret in secrets:
                for text_ in texts:
                    assert secret not in text_, f"{kind}: leaked into {text_[:300]!r}"
        result = gptalk("chat", "--proxy", proxy, "--url", "http://gptalk.invalid", "Hello")
    assert result.returncode == 3, result.stderr
    for secret in secrets:
        assert secret not in result.stderr + result.stdout


def test_reprs_of_the_client_and_its_connector_hide_the_proxy_credentials() -> None:
    proxy = f"http://{PROXY_USER}:{PROXY_PASSWORD}@127.0.0.1:1"
    for client in (
        AsyncClient("http://gptalk.invalid", proxy=proxy),
        Client("http://gptalk.invalid", proxy=proxy),
    ):
        options = client.connector.request_options
        assert options.proxy_headers[0][1] == f"Basic {PROXY_BASIC}"  # still sent
        texts = [repr(options), str(options), repr(client), repr(client.connector)]
        texts += [repr(client.proxy), str(client.proxy)]
        for secret in (PROXY_PASSWORD, PROXY_BASIC):
            for text_ in texts:
                assert secret not in text_, text_
        assert "proxy-authorization" in repr(options)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://user:hunter2-pw@example.com",
        "user:hunter2-pw@example.com",
        "http://user:hunter2-pw@",
        "//user:hunter2-pw@example.com",
    ],
)
def test_a_refused_service_url_never_shows_its_password(url: str) -> None:
    # The URL is refused for its scheme or its host, before the check that
    # refuses credentials: the message quoted it whole, password and all.
    with pytest.raises(g.LocalProtocolError) as caught:
        Origin.parse(url)
    assert "hunter2-pw" not in str(caught.value)
    assert "expected an http:// or https:// URL" in str(caught.value)
    result = gptalk("chat", "--url", url, "Hello")
    assert result.returncode == 2, result.stderr
    assert "hunter2-pw" not in result.stderr + result.stdout


def test_scrubbing_replaces_every_spelling_and_follows_the_chain() -> None:
    long_secret = "Ab+/cd==efgh1234"
    secrets = [("login-token", long_secret), ("proxy-credentials", "pw")]
    text_ = f"x{long_secret}y {json.dumps('é' + long_secret)} %s pw: passed pw" % (
        "Ab%2B%2Fcd%3D%3Defgh1234"
    )
    assert scrub_text(text_, secrets) == (
        'x<login-token>y "\\u00e9<login-token>" <login-token> '
        "<proxy-credentials>: passed <proxy-credentials>"
    )
    inner = g.HTTPStatusError(407, "http://h/p", f"refused {long_secret}")
    outer = g.RemoteProtocolError(f"wrapped pw {long_secret}")
    outer.__cause__ = inner
    scrub_error(outer, secrets)
    assert str(outer) == "wrapped <proxy-credentials> <login-token>"
    assert inner.msg == "refused <login-token>"
    assert long_secret not in str(inner)
