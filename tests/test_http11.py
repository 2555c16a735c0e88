"""The core's HTTP/1.1 boundary (gptalk_proto._http11) on its own: the client's
response reader, the one h11 response parser, and h11's errors re-typed."""

from __future__ import annotations

import h11
import pytest

from gptalk_proto import NEED_DATA, LocalProtocolError, RemoteProtocolError
from gptalk_proto._errors import InvalidHTTP
from gptalk_proto._http11 import (
    SERVER_CLOSED,
    ReaderState,
    ResponseHead,
    ResponseReader,
    next_h11_event,
    response_parser,
    send_h11,
)

CHUNKED_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
)
LENGTH_HEAD = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n"


def drain(reader: ResponseReader) -> list[object]:
    """Events until NEED_DATA or the end of a body."""
    out: list[object] = []
    while True:
        event = reader.next_event()
        if event is NEED_DATA:
            return out
        out.append(event)
        if event == b"":
            return out


def test_two_responses_in_one_read_keep_the_connection() -> None:
    reader = ResponseReader(max_head_size=1024)
    reader.expect("GET", close=False)
    reader.receive_data(LENGTH_HEAD + b"hello" + CHUNKED_HEAD + b"3\r\nabc\r\n0\r\n\r\n")
    head, body, end = drain(reader)
    assert isinstance(head, ResponseHead)
    assert (head.status, body, end) == (200, b"hello", b"")
    # The second response's bytes came early: kept, and the reader says so.
    assert reader.state is ReaderState.IDLE
    assert not reader.reusable
    reader.expect("POST", close=False)
    assert reader.answered
    events = drain(reader)
    assert events[1:] == [b"abc", b""]
    assert reader.reusable


def test_a_chunked_body_split_anywhere_gives_the_same_bytes() -> None:
    wire = CHUNKED_HEAD + b"5\r\nhello\r\n1;ext=1\r\n!\r\n0\r\nx-t: 1\r\n\r\n"
    for cut in range(1, len(wire)):
        reader = ResponseReader(max_head_size=1024)
        reader.expect("GET", close=False)
        got: list[object] = []
        for piece in (wire[:cut], wire[cut:]):
            reader.receive_data(piece)
            got += drain(reader)
        assert b"".join(e for e in got if isinstance(e, bytes)) == b"hello!", cut
        assert got[-1] == b"", cut
        assert reader.reusable, cut


def test_a_bad_chunk_gives_the_bytes_before_it_then_invalid_http() -> None:
    reader = ResponseReader(max_head_size=1024)
    reader.expect("GET", close=False)
    reader.receive_data(CHUNKED_HEAD + b"2\r\nok\r\nzz\r\n")
    assert isinstance(reader.next_event(), ResponseHead)
    assert reader.next_event() == b"ok"
    with pytest.raises(InvalidHTTP, match="chunk"):
        reader.next_event()
    assert reader.state is ReaderState.DONE


@pytest.mark.parametrize("head", [CHUNKED_HEAD + b"5\r\nhel", LENGTH_HEAD + b"hel"])
def test_eof_inside_a_body_says_the_server_closed(head: bytes) -> None:
    reader = ResponseReader(max_head_size=1024)
    reader.expect("GET", close=False)
    reader.receive_data(head)
    drain(reader)
    reader.receive_data(b"")
    with pytest.raises(InvalidHTTP) as info:
        drain(reader)
    assert str(info.value) == SERVER_CLOSED
    with pytest.raises(LocalProtocolError, match="after EOF"):
        reader.receive_data(b"more")


@pytest.mark.parametrize(
    ("close", "head", "reusable"),
    [
        (False, LENGTH_HEAD, True),
        (True, LENGTH_HEAD, False),
        (False, b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: close\r\n\r\n", False),
        (False, b"HTTP/1.0 200 OK\r\ncontent-length: 5\r\n\r\n", False),
        (True, CHUNKED_HEAD, False),
        (False, CHUNKED_HEAD.replace(b"\r\n\r\n", b"\r\nconnection: close\r\n\r\n"), False),
    ],
)
def test_keep_alive_follows_both_heads(close: bool, head: bytes, reusable: bool) -> None:
    reader = ResponseReader(max_head_size=1024)
    reader.expect("GET", close=close)
    body = b"5\r\nhello\r\n0\r\n\r\n" if b"chunked" in head else b"hello"
    reader.receive_data(head + body)
    assert drain(reader)[-1] == b""
    assert reader.reusable is reusable
    assert reader.state is (ReaderState.IDLE if reusable else ReaderState.DONE)


def test_one_request_at_a_time() -> None:
    reader = ResponseReader(max_head_size=1024)
    reader.expect("GET", close=False)
    with pytest.raises(LocalProtocolError):
        reader.expect("GET", close=False)


def test_h11_errors_are_retyped_at_the_boundary() -> None:
    conn = response_parser("GET")
    conn.receive_data(b"NOT HTTP\r\n\r\n")
    with pytest.raises(InvalidHTTP) as info:
        next_h11_event(conn)
    assert isinstance(info.value, RemoteProtocolError)
    assert not isinstance(info.value, h11.ProtocolError)
    server = h11.Connection(h11.SERVER)
    with pytest.raises(LocalProtocolError):
        send_h11(server, h11.Data(data=b"no response yet"))


def test_a_head_response_has_no_body() -> None:
    conn = response_parser("HEAD")
    conn.receive_data(LENGTH_HEAD)
    assert isinstance(next_h11_event(conn), h11.Response)
    assert isinstance(next_h11_event(conn), h11.EndOfMessage)
