"""Issue 10, the client's settings: timeouts refuse what no clock can mean, and
the g4f-compatible class shares one login per URL and event loop."""

from __future__ import annotations

import math
import warnings

import anyio
import pytest

import gptalk_proto as g
import gptalk_proto.server
from gptalk_transports import GPTalk, Timeout
from gptalk_transports._config import MAX_TIMEOUT, check_timeout
from gptalk_transports._server.refserver import make_service, serve_in_thread

from .console import gptalk

BAD_TIMEOUTS = [math.nan, math.inf, -math.inf, -1, -0.5, 0, 0.0, MAX_TIMEOUT * 2, True, "3"]


# -- timeouts -----------------------------------------------------------------------------------


@pytest.mark.parametrize("value", BAD_TIMEOUTS, ids=repr)
@pytest.mark.parametrize("field", ["connect", "read", "total"])
def test_timeout_refuses_nan_infinities_and_non_positive_values(field: str, value: object) -> None:
    with pytest.raises(g.LocalProtocolError, match=f"the {field} timeout"):
        Timeout(**{field: value})  # type: ignore[arg-type]
    with pytest.raises(g.LocalProtocolError):
        Timeout()._replace(**{field: value})  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [math.nan, math.inf, -1, 0])
def test_a_single_number_timeout_is_checked_too(value: float) -> None:
    with pytest.raises(g.LocalProtocolError):
        Timeout.coerce(value)


def test_none_turns_a_timeout_off_and_numbers_become_floats() -> None:
    assert Timeout(None, None, None) == (None, None, None)
    assert Timeout(connect=5, read=None) == (5.0, None, 600.0)
    assert type(Timeout(connect=5).connect) is float
    assert Timeout(total=MAX_TIMEOUT).total == MAX_TIMEOUT
    assert check_timeout("read", 1e-9) == 1e-9
    assert Timeout.coerce(None) == (None, None, None)


CLI_BAD = [
    *((flag, value) for flag in ("--connect-timeout", "--total-timeout") for value in ("nan", "0")),
    *(("--read-timeout", value) for value in ("nan", "NaN", "inf", "-inf", "Infinity", "-1", "0")),
    ("--read-timeout", "1e99"),
]


@pytest.mark.parametrize(("flag", "value"), CLI_BAD)
def test_the_command_refuses_bad_timeouts_as_usage_errors(flag: str, value: str) -> None:
    result = gptalk("chat", f"{flag}={value}", "Hello")
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    assert f"argument {flag}" in result.stderr.splitlines()[-1]


def test_the_load_command_checks_its_timeouts_alike() -> None:
    result = gptalk("load", "--read-timeout", "nan", "--chats", "1")
    assert result.returncode == 2, result.stderr
    assert "argument --read-timeout" in result.stderr


# -- g4f: one login per five calls ---------------------------------------------------------------


def _g4f_calls(url: str, count: int, library: str) -> tuple[list[str], list[g.Credentials]]:
    async def one(index: int, results: list[str]) -> None:
        messages = [{"role": "user", "content": f"g4f {index}"}]
        pieces = [p async for p in GPTalk.create_async_generator("", messages, base_url=url)]
        results[index] = "".join(pieces)

    async def main() -> tuple[list[str], list[g.Credentials]]:
        results = [""] * count
        async with anyio.create_task_group() as group:
            for index in range(count):
                group.start_soon(one, index, results)
        # Every call has ended: no client is left open.
        assert not GPTalk._clients
        return results, [GPTalk.credentials_for(url)]

    return anyio.run(main, backend=library)


@pytest.mark.parametrize("library", ["asyncio", "trio"])
def test_fifty_concurrent_g4f_calls_log_in_ten_times(library: str, no_leaks: None) -> None:
    service = make_service()
    with serve_in_thread(service) as url, warnings.catch_warnings():
        warnings.simplefilter("error")  # no ResourceWarning for an unclosed socket
        results, (credentials,) = _g4f_calls(url, 50, library)
    assert results == [g.server.expected_reply(f"g4f {i}") for i in range(50)]
    assert service.counts["text"] == 50
    assert service.counts["login"] == 10  # 5 chats per token, single-flight logins
    assert credentials.logins == 10


def test_g4f_credentials_are_per_event_loop(no_leaks: None) -> None:
    service = make_service()
    with serve_in_thread(service) as url:
        _, (first,) = _g4f_calls(url, 3, "asyncio")
        _, (second,) = _g4f_calls(url, 3, "trio")
    # A new loop starts from fresh credentials (no token shared across threads
    # or runs); each run logged in once for its three calls.
    assert first is not second
    assert first.logins == second.logins == 1
    assert service.counts["login"] == 2


def test_sequential_g4f_calls_on_one_loop_reuse_the_token(no_leaks: None) -> None:
    service = make_service()
    with serve_in_thread(service) as url:

        async def main() -> None:
            for index in range(7):
                messages = [{"role": "user", "content": f"seq {index}"}]
                async for _ in GPTalk.create_async_generator("", messages, base_url=url):
                    pass
                assert not GPTalk._clients  # closed by the call that used it last

        anyio.run(main)
    assert service.counts["login"] == 2  # 5 + 2 chats


def test_a_g4f_call_closed_early_releases_its_client(no_leaks: None) -> None:
    service = make_service()
    with serve_in_thread(service) as url:

        async def main() -> None:
            messages = [{"role": "user", "content": "Hello, how are you?"}]
            generator = GPTalk.create_async_generator("", messages, base_url=url)
            first = await generator.__anext__()
            assert first
            assert len(GPTalk._clients) == 1
            await generator.aclose()
            assert not GPTalk._clients

        anyio.run(main)


def test_credentials_for_outside_a_loop_is_a_usage_error() -> None:
    with pytest.raises(g.LocalProtocolError, match="event loop"):
        GPTalk.credentials_for("http://127.0.0.1:1")
