"""``Retry-After`` on 429 and 503 (RFC 9110 section 10.2.3, RFC 6585 section 4):
seconds or an HTTP date, capped, never past the total timeout, and hostile
values ignored.

No test here waits: the clients' sleeps are fakes that record the delays
asked for, and the clock for HTTP dates is a fixed number.
"""

from __future__ import annotations

import json
import random
import socket
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from email.utils import format_datetime
from typing import Any

import anyio
import pytest

import gptalk_proto as g
from gptalk_transports import AsyncClient, Client, RetryPolicy, Timeout
from gptalk_transports._backends.auto import make_async_backend
from gptalk_transports._backends.base import AsyncBackend
from gptalk_transports._backends.sync import BlockingBackend
from gptalk_transports._retry import MAX_RETRY_AFTER, RetryState, retry_after_seconds

from . import clients
from .hostile_peer import chunked, hostile_peer

#: The unix time the clients' clocks say, throughout.
NOW = 1_750_000_000.0
URL = "http://gptalk.test/api/chatgpt/chatapi/text"


def http_date(unix: float) -> str:
    return format_datetime(datetime.fromtimestamp(unix, timezone.utc), usegmt=True)


# -- the value -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("7", 7.0),
        ("0", 0.0),
        (" 12 ", 12.0),
        ("007", 7.0),
        ("9" * 5000, 1e12),  # huge: no int() of 5000 digits, capped by the policy
        (http_date(NOW + 30), 30.0),
        (http_date(NOW - 30), 0.0),  # a past date: at once
        ("-5", None),
        ("+5", None),
        ("1.5", None),
        ("1e3", None),
        ("nan", None),
        ("NaN", None),
        ("inf", None),
        ("", None),
        ("soon", None),
        ("\u0663", None),  # an Arabic-Indic digit: str.isdigit, not DIGIT
        ("Wed, 21 Oct 99999 07:28:00 GMT", None),  # a year datetime cannot hold
        ("Wed, 32 Oct 2015 07:28:00 GMT", None),
    ],
)
def test_the_value(value: str, seconds: float | None) -> None:
    assert retry_after_seconds(value, NOW) == seconds


def test_the_obsolete_date_forms_and_a_date_without_a_zone_is_gmt() -> None:
    """RFC 9110 section 5.6.7: recipients also read RFC 850 and asctime dates."""
    when = datetime(2025, 10, 21, 7, 28, tzinfo=timezone.utc).timestamp()
    assert retry_after_seconds("Tuesday, 21-Oct-25 07:28:00 GMT", when - 4) == 4.0
    assert retry_after_seconds("Sun Nov  6 08:49:37 1994", 784111777.0 - 10) == 10.0
    assert retry_after_seconds("Sun, 06 Nov 1994 08:49:37 -0000", 784111777.0 - 10) == 10.0


# -- the policy ------------------------------------------------------------------------------


def decide(policy: RetryPolicy, error: g.GPTalkError, state: RetryState | None = None) -> float:
    return policy.decide(error, state or RetryState(), random.Random(0), now=NOW)


@pytest.mark.parametrize("status", [429, 503])
def test_the_policy_waits_what_is_asked_capped(status: int) -> None:
    policy = RetryPolicy(backoff=100.0, max_backoff=100.0)
    assert decide(policy, g.HTTPStatusError(status, URL, retry_after="3")) == 3.0
    assert decide(policy, g.HTTPStatusError(status, URL, retry_after=http_date(NOW + 9))) == 9.0
    huge = g.HTTPStatusError(status, URL, retry_after="99999999")
    assert decide(policy, huge) == MAX_RETRY_AFTER
    assert decide(policy._replace(max_retry_after=5.0), huge) == 5.0
    assert decide(policy._replace(max_retry_after=0.0), huge) == 0.0


@pytest.mark.parametrize("value", ["-1", "nan", "garbage", "1.5", None])
def test_hostile_values_fall_back_to_the_backoff(value: str | None) -> None:
    policy = RetryPolicy(backoff=0.5, max_backoff=0.5)
    delay = decide(policy, g.HTTPStatusError(503, URL, retry_after=value))
    assert 0.25 <= delay <= 0.5


def test_retries_stay_counted() -> None:
    policy = RetryPolicy(retries=2)
    state = RetryState()
    error = g.HTTPStatusError(429, URL, retry_after="1")
    assert [decide(policy, error, state), decide(policy, error, state)] == [1.0, 1.0]
    with pytest.raises(g.HTTPStatusError):
        decide(policy, error, state)


# -- the core keeps the value ----------------------------------------------------------------


def error_response(status: int, headers: Sequence[tuple[str, str]]) -> bytes:
    body = json.dumps({"code": status, "msg": "busy"}).encode()
    head = f"HTTP/1.1 {status} Busy\r\ncontent-type: application/json\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers)
    head += f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    return head.encode() + body


REPLY = ["Hello", ", world"]


def good_stream() -> bytes:
    head = (
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
        b"transfer-encoding: chunked\r\nconnection: close\r\n\r\n"
    )
    text = ""
    body = b""
    for piece in REPLY:
        text += piece
        body += chunked(b"data: " + json.dumps({"content": text}).encode() + b"\n\n")
    return head + body + chunked(b"data: [DONE]\n\n") + b"0\r\n\r\n"


@contextmanager
def busy_peer(answers: Sequence[bytes]) -> Iterator[tuple[str, list[int]]]:
    """A peer whose stream requests get ``answers`` in turn, then a good
    stream; yields its URL and a one-item list counting stream requests."""
    count = [0]

    def write(sock: socket.socket) -> None:
        number = count[0]
        count[0] += 1
        sock.sendall(answers[number] if number < len(answers) else good_stream())

    with hostile_peer(write) as url:
        yield url, count


def recorded_sleeps(kind: str, delays: list[float]) -> dict[str, Any]:
    """Client arguments whose waits between attempts only record the delay."""
    if kind == "blocking":

        class RecordedBlocking(BlockingBackend):
            def sleep(self, seconds: float) -> None:
                delays.append(seconds)

        return {"backend": RecordedBlocking()}
    backend = make_async_backend(clients.ASYNC_KINDS[kind][0])

    class Recorded(type(backend)):  # type: ignore[misc]
        async def sleep(self, seconds: float) -> None:
            delays.append(seconds)

    recorded: AsyncBackend = Recorded()
    return {"backend": recorded}


def chat(kind: str, url: str, delays: list[float], **kwargs: Any) -> str:
    kwargs = {"clock": lambda: NOW, **recorded_sleeps(kind, delays), **kwargs}
    if kind == "blocking":
        with Client(url, **kwargs) as client:
            return client.chat("hi")
    loop = clients.ASYNC_KINDS[kind][1]

    async def main() -> str:
        async with AsyncClient(url, **kwargs) as client:
            return await client.chat("hi")

    result: str = anyio.run(main, backend=loop)
    return result


@pytest.mark.parametrize("kind", clients.KINDS)
def test_the_clients_wait_what_the_server_asks(kind: str, no_leaks: None) -> None:
    answers = [
        error_response(503, [("Retry-After", "3")]),
        error_response(429, [("retry-after", http_date(NOW + 7))]),
        error_response(503, [("Retry-After", "nan")]),  # ignored: the backoff applies
    ]
    delays: list[float] = []
    policy = RetryPolicy(retries=3, backoff=0.001, max_backoff=0.001)
    with busy_peer(answers) as (url, count):
        assert chat(kind, url, delays, retry=policy) == "".join(REPLY)
    assert count == [4]
    assert delays[:2] == [3.0, 7.0]
    assert len(delays) == 3
    assert 0.0005 <= delays[2] <= 0.001


@pytest.mark.parametrize("kind", clients.KINDS)
def test_a_huge_wait_is_capped(kind: str) -> None:
    delays: list[float] = []
    policy = RetryPolicy(max_retry_after=2.0)
    with busy_peer([error_response(429, [("Retry-After", "86400")])]) as (url, count):
        assert chat(kind, url, delays, retry=policy) == "".join(REPLY)
    assert (delays, count) == ([2.0], [2])


@pytest.mark.parametrize("kind", clients.KINDS)
def test_a_wait_past_the_total_timeout_fails_at_once(kind: str) -> None:
    delays: list[float] = []
    busy = busy_peer([error_response(503, [("Retry-After", "50")])])
    with busy as (url, count), pytest.raises(g.HTTPStatusError) as caught:
        chat(kind, url, delays, timeout=Timeout(connect=10, read=10, total=30))
    assert caught.value.status == 503
    assert caught.value.retry_after == "50"
    assert (delays, count) == ([], [1])


def test_other_statuses_keep_no_retry_after() -> None:
    """A 500's Retry-After is not one the protocol defines: the backoff applies."""
    delays: list[float] = []
    policy = RetryPolicy(retries=1, backoff=0.001, max_backoff=0.001)
    with busy_peer([error_response(500, [("Retry-After", "40")])]) as (url, _):
        assert chat("blocking", url, delays, retry=policy) == "".join(REPLY)
    assert len(delays) == 1
    assert delays[0] <= 0.001


def test_a_long_value_is_dropped_by_the_core() -> None:
    """100 digits would be a huge delay, capped to a minute; no valid value is
    that long, so the core drops it and the backoff applies."""
    delays: list[float] = []
    policy = RetryPolicy(retries=1, backoff=0.001, max_backoff=0.001)
    with busy_peer([error_response(503, [("Retry-After", "1" + "0" * 99)])]) as (url, _):
        assert chat("blocking", url, delays, retry=policy) == "".join(REPLY)
    assert len(delays) == 1
    assert delays[0] <= 0.001


def test_the_blocking_client_sleeps_for_real_by_default() -> None:
    with Client("http://127.0.0.1:1") as client:
        assert type(client.backend) is BlockingBackend
    slept = time.monotonic()
    BlockingBackend().sleep(0.01)
    assert time.monotonic() - slept >= 0.01
