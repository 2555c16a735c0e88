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
from gptalk_transports import AsyncClient, Client, Origin, RetryPolicy
from gptalk_transports._anyio_backend import AnyioBackend
from gptalk_transports._cassettes import (
    AsyncRecordingConnector,
    Recording,
    SyncRecordingConnector,
)
from gptalk_transports._connector import AsyncConnector, SyncConnector
from gptalk_transports._refserver import serve_in_background, serve_in_thread

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


async def _faulted_async(faults: tuple[str, ...]) -> tuple[g.Cassette, list[str], list[Any]]:
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


def _faulted_blocking(faults: tuple[str, ...]) -> tuple[g.Cassette, list[str], list[Any]]:
    texts: list[str] = []
    errors: list[Any] = []
    with serve_in_thread(faults=faults) as url:
        recording = Recording(url)
        connector = SyncRecordingConnector(SyncConnector(Origin.parse(url)), recording)
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
    redacted = g.redact(raw)
    findings = g.lint(raw)
    assert findings, "lint sees the unredacted secrets"
    texts += findings
    texts += texts_of(redacted)
    texts.append(json.dumps(g.to_har(redacted), indent=1))
    assert g.lint(redacted) == []
    assert_absent(secrets, texts)
