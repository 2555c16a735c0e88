"""The request path's shortcuts give what the long way gives: JSON bodies
read without json.loads' Python layers, fingerprints drawn in batches, the
automatic backend chosen without sniffio's asyncio probe, request framing,
the stream token quoted only when it needs to be, and the fingerprint
checked without its regex."""

from __future__ import annotations

import asyncio
import json
import re
import threading
from typing import Any
from urllib.parse import quote

import anyio
import pytest
import sniffio
from hypothesis import given, settings
from hypothesis import strategies as st

import gptalk_proto as g
from gptalk_proto._wire import _loads, check_fingerprint, load_json_object, stream_request
from gptalk_transports._backends.anyio import AnyioBackend
from gptalk_transports._backends.asyncio import AsyncioBackend
from gptalk_transports._backends.auto import AutoBackend, concrete
from gptalk_transports._fingerprints import FINGERPRINT_BATCH, Fingerprints

# -- JSON bodies ----------------------------------------------------------------------------


def _outcome(load: Any, body: bytes) -> tuple[str, object]:
    try:
        return "value", load(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return "error", None


def _same(body: bytes) -> None:
    expected = _outcome(json.loads, body)
    got = _outcome(_loads, body)
    assert got[0] == expected[0], body
    # repr: NaN != NaN, and a dict's keys keep their order.
    assert repr(got[1]) == repr(expected[1]), body


@pytest.mark.parametrize(
    "body",
    [
        b'{"code": 0, "data": {"token": "t.1"}}',
        b'{"a": 1}  \r\n\t',
        b'{"a": 1} x',
        b'{"a": 1}\x0c',
        b"{",
        b"{}",
        b"{}{}",
        b'{"a": "\xc3\xa9"}',
        b'{"a": "\xff"}',
        b'{"\xed\xa0\x80": 1}',
        b'{"a": "\\ud800"}',
        b'{"a": NaN, "b": -Infinity}',
        b'{"a": 1}\x00',
        b"{\x00\x00\x00",
        b"{\x00",
        b'{"a":' + b"[" * 100_000,
        b"[1]",
        b' {"a": 1}',
        b'\xef\xbb\xbf{"a": 1}',
        b'{\x00"\x00a\x00"\x00:\x001\x00}\x00',
        b"",
    ],
)
def test_a_body_reads_as_json_loads_reads_it(body: bytes) -> None:
    _same(body)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=40))
def test_any_bytes_after_a_brace_read_as_json_loads_reads_them(tail: bytes) -> None:
    _same(b"{" + tail)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(st.text(), json_values, max_size=4),
    st.booleans(),
    st.sampled_from(["", " ", "\n", " \r\n\t", "x", "}"]),
)
def test_json_objects_read_as_json_loads_reads_them(
    value: dict[str, Any], ascii_only: bool, tail: str
) -> None:
    body = (json.dumps(value, ensure_ascii=ascii_only) + tail).encode("utf-8", "surrogatepass")
    _same(body)


def test_a_body_that_is_not_json_is_still_named_without_its_bytes() -> None:
    with pytest.raises(g.RemoteProtocolError, match="expected a JSON object in the text"):
        load_json_object(b'{"token": "s3cret"} trailing', "text response")


# -- fingerprints ---------------------------------------------------------------------------


def test_fingerprints_are_fresh_and_valid_across_batches() -> None:
    source = Fingerprints()
    drawn = [source.take() for _ in range(3 * FINGERPRINT_BATCH + 1)]
    assert len(set(drawn)) == len(drawn)
    assert all(re.fullmatch("[0-9a-f]{32}", one) for one in drawn)
    for one in drawn:
        g.Chat("hi", credentials=g.Credentials(), fingerprint=one)  # the core takes them


def test_threads_never_share_a_fingerprint() -> None:
    source = Fingerprints()
    taken: list[list[str]] = [[] for _ in range(8)]

    def work(mine: list[str]) -> None:
        for _ in range(2 * FINGERPRINT_BATCH):
            mine.append(source.take())

    threads = [threading.Thread(target=work, args=(mine,)) for mine in taken]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    everything = [one for mine in taken for one in mine]
    assert len(everything) == 8 * 2 * FINGERPRINT_BATCH
    assert len(set(everything)) == len(everything)


# -- the automatic backend --------------------------------------------------------------------


def test_the_automatic_backend_is_asyncio_on_asyncio() -> None:
    async def main() -> object:
        return concrete(AutoBackend())

    assert isinstance(asyncio.run(main()), AsyncioBackend)


def test_the_automatic_backend_is_anyio_on_trio() -> None:
    async def main() -> object:
        return concrete(AutoBackend())

    assert isinstance(anyio.run(main, backend="trio"), AnyioBackend)


def test_the_automatic_backend_follows_sniffio_overrides() -> None:
    # What sniffio says wins, as before: its context variable, its thread-local.
    async def main() -> list[object]:
        found: list[object] = []
        token = sniffio.current_async_library_cvar.set("trio")
        try:
            found.append(concrete(AutoBackend()))
        finally:
            sniffio.current_async_library_cvar.reset(token)
        sniffio.thread_local.name = "trio"
        try:
            found.append(concrete(AutoBackend()))
        finally:
            sniffio.thread_local.name = None
        found.append(concrete(AutoBackend()))
        return found

    found = asyncio.run(main())
    assert [type(one) for one in found] == [AnyioBackend, AnyioBackend, AsyncioBackend]


def test_outside_any_loop_the_automatic_backend_is_asyncio() -> None:
    assert isinstance(concrete(AutoBackend()), AsyncioBackend)


# -- framing ----------------------------------------------------------------------------------


def _connection(
    proxy_headers: tuple[tuple[str, str], ...] = (), **kwargs: Any
) -> g.ClientConnection:
    credentials = g.Credentials()
    credentials.store("tok", expires_at=4_102_444_800)  # the text request comes first
    chat = g.Chat("hi", credentials=credentials, fingerprint="0" * 32, **kwargs)
    return g.ClientConnection(chat, host="example", proxy_headers=proxy_headers)


def _answer_text_step(conn: g.ClientConnection, closes: bool) -> None:
    """The text step's answer: the connection closes after it, or is kept."""
    body = b'{"code": 0, "data": {"token": "s"}}'
    conn.receive_data(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body))
    event = conn.next_event()
    if closes:
        assert isinstance(event, g.ReconnectNeeded)
    else:
        assert event is g.SEND_REQUEST
        assert conn.reusable


@pytest.mark.parametrize(
    ("extra", "closes"),
    [
        ((), False),
        ((("Connection", "close"),), True),
        ((("connection", "keep-alive, Close"),), True),
        ((("connection", "keep-alive"),), False),
        ((("x-connection", "close"),), False),
    ],
)
def test_a_request_that_says_close_expects_the_connection_to_close(
    extra: tuple[tuple[str, str], ...], closes: bool
) -> None:
    conn = _connection(extra_headers=extra)
    assert conn.next_event() is g.SEND_REQUEST
    conn.send(now=1_700_000_000)
    _answer_text_step(conn, closes)


@pytest.mark.parametrize(
    ("proxy", "closes"),
    [
        ((("Proxy-Authorization", "Basic dTpw"),), False),
        ((("Connection", "close"),), True),
        ((("Proxy-Authorization", "Basic dTpw"), ("connection", "Keep-Alive, CLOSE")), True),
        ((("proxy-connection", "close"),), False),
    ],
)
def test_proxy_headers_that_say_close_expect_the_connection_to_close(
    proxy: tuple[tuple[str, str], ...], closes: bool
) -> None:
    # Whether requests say close is decided once per connection, from the
    # chat's extra headers and these: every request of the chat says it.
    conn = _connection(proxy_headers=proxy)
    assert conn.next_event() is g.SEND_REQUEST
    assert (b"\r\nconnection: " in conn.send(now=1_700_000_000).lower()) is closes
    _answer_text_step(conn, closes)
    if not closes:
        assert b"\r\nconnection: " not in conn.send(now=1_700_000_000).lower()


def test_proxy_headers_may_come_from_a_generator() -> None:
    chat = g.Chat("hi", credentials=g.Credentials(), fingerprint="0" * 32)
    pairs = (pair for pair in [("Proxy-Authorization", "Basic dTpw")])
    conn = g.ClientConnection(chat, host="example", proxy_headers=pairs)
    conn.next_event()
    assert b"\r\nproxy-authorization: Basic dTpw\r\n" in conn.send(now=1_700_000_000)


@pytest.mark.parametrize("prefix", ["http://a b", "http://a\tb", "http://\u00e9"])
def test_a_target_prefix_with_spaces_or_not_ascii_is_refused(prefix: str) -> None:
    chat = g.Chat("hi", credentials=g.Credentials(), fingerprint="0" * 32)
    with pytest.raises(g.LocalProtocolError, match="ASCII without spaces"):
        g.ClientConnection(chat, host="example", target_prefix=prefix)


# -- the stream request's target, the fingerprint check ---------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=20) | st.from_regex(r"[A-Za-z0-9\-._~+/]{1,20}=*", fullmatch=True))
def test_the_stream_target_quotes_the_token_as_quote_does(token: str) -> None:
    request = stream_request(token, now=1_700_000_000)
    assert request.target == f"/api/chatgpt/chatapi/stream?token={quote(token, safe='')}"


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="0123456789abcdefABCDEF \n-", max_size=34) | st.text(max_size=34))
def test_the_fingerprint_check_is_the_regex(fingerprint: str) -> None:
    valid = re.fullmatch(r"[0-9a-f]{32}", fingerprint) is not None
    try:
        check_fingerprint(fingerprint)
    except g.LocalProtocolError:
        assert not valid
    else:
        assert valid
