"""The fault matrix: every fault we can make, on every client, over loopback.

Each row ends in its stated outcome, within its timeout, with no leaked file
descriptor or thread (``no_leaks``) and warnings as errors.
"""

from __future__ import annotations

import socket
from typing import Any

import anyio
import pytest

import gptalk_proto as g
import gptalk_proto.server
from gptalk_transports import (
    AsyncClient,
    Client,
    ConnectError,
    DeadlineExceeded,
    ReadTimeout,
    RetryPolicy,
    Timeout,
)
from gptalk_transports._server.refserver import make_service, serve_in_thread

from . import clients

PROMPT = "Hello, how are you?"
PIECES = g.server.default_reply(PROMPT)
FAST = RetryPolicy(retries=3, backoff=0.01, max_backoff=0.05)

pytestmark = [pytest.mark.timeout(60), pytest.mark.parametrize("kind", clients.KINDS)]


def run(kind: str, faults: list[str], **kwargs: Any) -> tuple[g.server.Service, clients.Outcome]:
    kwargs.setdefault("retry", FAST)
    service = make_service(faults=faults)
    with serve_in_thread(service) as url:
        return service, clients.stream(kind, url, PROMPT, **kwargs)


def fail(
    kind: str, faults: list[str], error: type[BaseException], **kwargs: Any
) -> tuple[g.server.Service, BaseException, list[str]]:
    kwargs.setdefault("retry", FAST)
    service = make_service(faults=faults)
    seen: list[str] = []
    with serve_in_thread(service) as url, pytest.raises(error) as info:
        clients.stream(kind, url, PROMPT, into=seen, **kwargs)
    return service, info.value, seen


@pytest.mark.parametrize("fault", ["status=500@text#1", "status=503@text#1", "status=503@stream#1"])
def test_5xx_before_the_stream_then_healthy_is_retried(
    kind: str, fault: str, no_leaks: None
) -> None:
    service, outcome = run(kind, [fault])
    assert outcome.text == g.server.expected_reply(PROMPT)
    assert outcome.retries == 1
    assert service.counts["text"] == 2  # a new chat: the stream token is single-use


def test_503_forever_raises_after_the_retries(kind: str, no_leaks: None) -> None:
    retry = RetryPolicy(retries=2, backoff=0.01, max_backoff=0.02)
    service, error, _ = fail(kind, ["status=503@text"], g.HTTPStatusError, retry=retry)
    assert isinstance(error, g.HTTPStatusError)
    assert error.status == 503
    assert error.url.startswith("http://127.0.0.1:")
    assert error.url.endswith(g.TEXT_PATH)
    assert service.counts["text"] == 3


def test_quota_envelope_relogins_once(kind: str, no_leaks: None) -> None:
    service, outcome = run(kind, ["envelope=quota@text#1"])
    assert outcome.text == g.server.expected_reply(PROMPT)
    assert service.counts["login"] == 2


@pytest.mark.parametrize("which", ["expired", "invalid"])
def test_token_refused_relogins_once(kind: str, which: str, no_leaks: None) -> None:
    service, outcome = run(kind, [f"envelope={which}@text#1"])
    assert outcome.text == g.server.expected_reply(PROMPT)
    assert service.counts["login"] == 2


@pytest.mark.parametrize("which", ["expired", "invalid", "quota"])
def test_token_refused_twice_in_a_row_is_auth_invalid(
    kind: str, which: str, no_leaks: None
) -> None:
    service, error, _ = fail(kind, [f"envelope={which}@text#1-2"], g.AuthInvalid)
    assert type(error) is g.AuthInvalid
    assert service.counts["login"] == 2


def test_bad_request_envelope_is_not_retried(kind: str, no_leaks: None) -> None:
    service, error, _ = fail(kind, ["envelope=bad-request@text"], g.ServiceError)
    assert type(error) is g.ServiceError
    assert error.code == g.ErrorCode.BAD_REQUEST
    assert service.counts["text"] == 1


def test_stream_cut_after_text_raises_stream_interrupted_with_the_text(
    kind: str, no_leaks: None
) -> None:
    service, error, seen = fail(kind, ["cut=3"], g.StreamInterrupted)
    assert isinstance(error, g.StreamInterrupted)
    assert error.text == "".join(PIECES[:3])
    assert seen == PIECES[:3]
    assert service.counts["text"] == 1  # not retried once text was yielded


def test_stream_cut_before_any_text_is_retried(kind: str, no_leaks: None) -> None:
    service, outcome = run(kind, ["cut=0@stream#1"])
    assert outcome.text == g.server.expected_reply(PROMPT)
    assert outcome.retries == 1
    assert service.counts["stream"] == 2


def test_server_closing_before_answering_is_a_remote_protocol_error(
    kind: str, no_leaks: None
) -> None:
    _, error, _ = fail(kind, ["close@text"], g.RemoteProtocolError)
    assert "expected a response to the text request" in str(error)
    assert "closed the connection" in str(error)


@pytest.mark.parametrize("fault", ["malformed=2", "nocontent=2"])
def test_bad_event_quotes_a_bounded_excerpt(kind: str, fault: str, no_leaks: None) -> None:
    _, error, seen = fail(kind, [fault], g.RemoteProtocolError)
    assert type(error) is g.RemoteProtocolError
    assert "stream event, got '{" in str(error)
    assert len(str(error)) < 300
    assert seen == PIECES[:1]


def test_rewrite_is_a_typed_event_never_garbage(kind: str, no_leaks: None) -> None:
    _, error, seen = fail(kind, ["rewrite=3"], g.ContentRewritten)
    assert isinstance(error, g.ContentRewritten)
    assert error.previous == "".join(PIECES[:2])
    assert error.text == "(edited) " + "".join(PIECES[:3])
    assert seen == PIECES[:2]
    # Or carry on: the reader's text is the rewritten one, never a slice.
    _, outcome = run(kind, ["rewrite=3"], on_rewrite="ignore")
    assert outcome.text == "(edited) " + g.server.expected_reply(PROMPT)


def test_silence_longer_than_the_read_timeout_is_read_timeout(kind: str, no_leaks: None) -> None:
    timeout = Timeout(connect=5, read=0.5, total=30)
    fail(kind, ["stall=5@stream"], ReadTimeout, timeout=timeout)


def test_a_drip_forever_is_stopped_by_the_total_deadline(kind: str, no_leaks: None) -> None:
    timeout = Timeout(connect=5, read=2, total=1.5)
    fail(kind, ["drip=0.1"], DeadlineExceeded, timeout=timeout)


def test_connect_refused_is_connect_error(kind: str, no_leaks: None) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    retry = RetryPolicy(retries=1, backoff=0.01)
    with pytest.raises(ConnectError, match="cannot connect"):
        clients.stream(kind, f"http://127.0.0.1:{port}", PROMPT, retry=retry)


@pytest.mark.parametrize("step", ["login", "text", "stream"])
def test_cancellation_at_every_step(kind: str, step: str, no_leaks: None) -> None:
    """Cancelled while the server stalls at ``step``: the connection is closed,
    and the credentials are left as the steps before it made them.

    The cancellation waits for the server to hold the request (an event, not
    a guess of how long the steps before take on a busy machine); the stall
    outlasts any such wait."""
    service = make_service(faults=[f"stall=60@{step}#1"])
    credentials = g.Credentials()
    with serve_in_thread(service) as url:
        if kind == "blocking":
            # A blocking call is cancelled by its timeout: the nearest thing
            # (long enough that the steps before the stall never trip it).
            timeout = Timeout(connect=5, read=2, total=30)
            with Client(url, credentials=credentials, timeout=timeout) as client:
                with pytest.raises(ReadTimeout):
                    client.chat(PROMPT)
                after = client.chat("after")
        else:

            async def main(backend: str) -> str:
                finished = False

                async def first(client: AsyncClient) -> None:
                    nonlocal finished
                    await client.chat(PROMPT)
                    finished = True

                async with AsyncClient(url, backend=backend, credentials=credentials) as client:
                    with anyio.fail_after(30):  # a safety net only
                        async with anyio.create_task_group() as group:
                            group.start_soon(first, client)
                            while service.counts[step] < 1:  # the server holds it now
                                await anyio.sleep(0.01)
                            group.cancel_scope.cancel()
                    assert not finished
                    return await client.chat("after")

            after = clients.run_async(kind, main)
    assert after == g.server.expected_reply("after")
    # Uses never exceed the rule, and a token is stored only by a login that
    # finished: cancelled during login, the next chat logged in again.
    assert credentials.uses <= credentials.max_uses
    # The first login completed only when the cancelled chat was past it.
    assert service.counts["login"] == (2 if step == "login" else 1)
    assert credentials.logins == 1
