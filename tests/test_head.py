"""Plain response heads read without h11 equal h11 on any input (a differential
test): ``read_head`` answers only as h11 would, and the client's response
reader, which reads plain heads and Content-Length bodies itself, gives what
an h11 parser gives for the same bytes, however they are split."""

from __future__ import annotations

import itertools

import h11
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gptalk_proto import NEED_DATA
from gptalk_proto._errors import InvalidHTTP
from gptalk_proto._head import CHUNKED, PlainHead, read_head
from gptalk_proto._http11 import ReaderState, ResponseHead, ResponseReader, response_parser

LIMIT = 256  # a small head cap, so the cap is exercised too

STATUS_LINES = [
    b"HTTP/1.1 200 OK",
    b"HTTP/1.1 200",
    b"HTTP/1.1 200 ",
    b"HTTP/1.1 404 Not\tFound",
    b"HTTP/1.1 503 caf\xc3\xa9",
    b"HTTP/1.1 200 \x7f\x01",
    b"HTTP/1.1 204 No Content",
    b"HTTP/1.1 304 Not Modified",
    b"HTTP/1.1 100 Continue",
    b"HTTP/1.1 101 Switching",
    b"HTTP/1.1 600 Odd",
    b"HTTP/1.1 099 Odd",
    b"HTTP/1.0 200 OK",
    b"HTTP/2.0 200 OK",
    b"HTTP/1.1 20 OK",
    b"HTTP/1.1  200 OK",
    b"http/1.1 200 OK",
    b" HTTP/1.1 200 OK",
    b"HTTP/1.1 200 O\x00K",
]
NAMES = [
    b"content-length",
    b"Content-Length",
    b"transfer-encoding",
    b"Transfer-Encoding",
    b"connection",
    b"Connection",
    b"content-type",
    b"x-a",
    b"bad name",
    b"",
    b"x\x80",
]
VALUES = [
    b"0",
    b"5",
    b"05",
    b"5, 5",
    b"5,6",
    b"-1",
    b"1" * 21,
    b"chunked",
    b"CHUNKED",
    b"gzip, chunked",
    b"close",
    b"keep-alive, close",
    b" Close ",
    b"closer",
    b"a  b",
    b"",
    b"\x80\xff",
    b"a\x00b",
    b"a\x0bb",
    b"text/event-stream",
]


@st.composite
def heads(draw: st.DrawFn) -> bytes:
    lines = [draw(st.sampled_from(STATUS_LINES))]
    for _ in range(draw(st.integers(0, 5))):
        if draw(st.integers(0, 9)) == 0:
            lines.append(draw(st.sampled_from([b" folded", b"\tfolded", b"junk", b"x-b: \r"])))
            continue
        name = draw(st.sampled_from(NAMES))
        colon = draw(st.sampled_from([b": ", b":", b":\t ", b" : ", b": "]))
        value = draw(st.sampled_from(VALUES))
        tail = draw(st.sampled_from([b"", b"", b" ", b"\t"]))
        lines.append(name + colon + value + tail)
    ends = [draw(st.sampled_from([b"\r\n"] * 8 + [b"\n"])) for _ in range(len(lines) + 1)]
    head = b"".join(line + end for line, end in zip(lines, ends, strict=False)) + ends[-1]
    body = draw(st.sampled_from([b"", b"hello", b"0\r\n\r\n", b"5\r\nhello\r\n0\r\n\r\nNEXT"]))
    return head + body + draw(st.binary(max_size=12))


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    edges = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(edges) if b > a]


# What a reader made of some bytes: the final head (status, headers), the
# body bytes, how it ended ("end", "error" or "need"), whether the
# connection is kept, and the bytes left for the next response.
Outcome = tuple[tuple[int, list[tuple[bytes, bytes]]] | None, bytes, str, bool, bytes]


def through_h11(pieces: list[bytes], method: str, close: bool, eof: bool) -> Outcome:
    conn = response_parser(method, close=close, max_head_size=LIMIT)
    head = None
    body = b""
    try:
        for piece in [*pieces, *([b""] if eof else [])]:
            conn.receive_data(piece)
            while True:
                event = conn.next_event()
                if isinstance(event, h11.Response):
                    head = (event.status_code, list(event.headers))
                elif isinstance(event, h11.Data):
                    body += event.data
                elif isinstance(event, h11.EndOfMessage):
                    keep = conn.our_state is h11.DONE and conn.their_state is h11.DONE
                    keep = keep and piece != b""  # not after the peer's EOF
                    return head, body, "end", keep, conn.trailing_data[0] if keep else b""
                elif isinstance(event, h11.ConnectionClosed):
                    return head, body, "error", False, b""
                elif event is h11.NEED_DATA:
                    break
    except h11.RemoteProtocolError:
        return head, body, "error", False, b""
    return head, body, "need", False, b""


def through_ours(pieces: list[bytes], method: str, close: bool, eof: bool) -> Outcome:
    reader = ResponseReader(max_head_size=LIMIT)
    reader.expect(method, close=close)
    reader.request_sent()
    head = None
    body = b""
    try:
        for piece in [*pieces, *([b""] if eof else [])]:
            reader.receive_data(piece)
            while True:
                event = reader.next_event()
                if isinstance(event, ResponseHead):
                    head = (event.status, list(event.headers))
                elif event is NEED_DATA:
                    break
                elif event:
                    assert isinstance(event, bytes)
                    body += event
                else:
                    keep = reader.state is ReaderState.IDLE
                    return head, body, "end", keep, b"".join(reader._unread) if keep else b""
    except InvalidHTTP:
        return head, body, "error", False, b""
    return head, body, "need", False, b""


@settings(max_examples=600, deadline=None)
@given(
    heads(),
    st.lists(st.integers(0, 400), max_size=5),
    st.sampled_from(["GET", "POST", "HEAD"]),
    st.booleans(),
    st.booleans(),
)
def test_the_reader_equals_h11(
    data: bytes, cuts: list[int], method: str, close: bool, eof: bool
) -> None:
    pieces = split(data, cuts)
    assert through_ours(pieces, method, close, eof) == through_h11(pieces, method, close, eof)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.lists(st.integers(0, 400), max_size=4), st.booleans())
def test_the_reader_equals_h11_on_arbitrary_bytes(data: bytes, cuts: list[int], eof: bool) -> None:
    pieces = split(data, cuts)
    assert through_ours(pieces, "GET", False, eof) == through_h11(pieces, "GET", False, eof)


@settings(max_examples=600, deadline=None)
@given(heads())
def test_read_head_answers_only_as_h11_would(data: bytes) -> None:
    found = read_head(data, LIMIT)
    conn = response_parser("GET", max_head_size=LIMIT)
    conn.receive_data(data)
    try:
        event = conn.next_event()
    except h11.RemoteProtocolError:
        assert found is None
        return
    if found is NEED_DATA:
        assert event is h11.NEED_DATA
    elif found is not None:
        assert isinstance(found, PlainHead)
        assert isinstance(event, h11.Response)
        assert (found.status, found.headers) == (event.status_code, list(event.headers))
        assert conn.trailing_data[0] == data[found.end :]
        # The framing h11 chose: an empty chunked body ends at "0\r\n\r\n",
        # a Content-Length body after exactly that many bytes.
        rest = b"0\r\n\r\n" if found.length == CHUNKED else b"x" * found.length
        conn = response_parser("GET", max_head_size=LIMIT)
        conn.receive_data(data[: found.end] + rest)
        events = []
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                break
            events.append(type(event))
            if isinstance(event, h11.EndOfMessage):
                break
        assert events[-1] is h11.EndOfMessage
        assert found.keep_alive is (conn.their_state is h11.DONE)


@pytest.mark.parametrize(
    "head",
    [
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 12\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n",
        b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    ],
)
def test_a_gptalk_servers_heads_are_read_here(head: bytes) -> None:
    # The point of the fast path: what a GPTalk server sends never needs h11.
    assert isinstance(read_head(head, LIMIT), PlainHead)
    reader = ResponseReader(max_head_size=LIMIT)
    reader.expect("POST", close=False)
    reader.request_sent()
    reader.receive_data(head)
    assert isinstance(reader.next_event(), ResponseHead)
    assert reader._parser is None


EDGE_HEADS = [
    b"HTTP/1.1 200 OK\r\ncontent-length: " + b"1" * 20 + b"\r\n\r\n",
    b"HTTP/1.1 200 OK\r\ncontent-length: " + b"1" * 21 + b"\r\n\r\n",
    b"HTTP/1.1 200 OK\r\ncontent-length: 5, 5\r\n\r\nhello",
    b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-length: 5\r\n\r\nhello",
    b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\ntransfer-encoding: Chunked\r\n\r\n0\r\n\r\n",
    b"HTTP/1.1 304 Not Modified\r\ncontent-length: 5\r\n\r\n",
    b"HTTP/1.1 204 No Content\r\ncontent-length: 5\r\n\r\n",
    b"HTTP/1.1 204 No Content\r\ntransfer-encoding: chunked\r\n\r\n",
    b"HTTP/1.1 304 Not Modified\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n",
    b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nhi",
    b"HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\nhi",
    b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: keep-alive,  Close \r\n\r\nhi",
    b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: closer\r\n\r\nhi",
    b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nx-a: 1\r\n folded\r\n\r\nhi",
    b"HTTP/1.1 200 OK\ncontent-length: 2\n\nhi",
    b"HTTP/1.1 200 OK\r\ncontent-length: 2\n\r\nhi",
    b"HTTP/1.1 200 OK\r\nx-a: " + b"v" * 300 + b"\r\ncontent-length: 2\r\n\r\nhi",
    b"HTTP/1.1 200 OK\r\nx-a: " + b"v" * 300,
    b"\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nhi",
    b"HTTP/1.1 200 OK\r\ncontent-type: a\x00b\r\ncontent-length: 2\r\n\r\nhi",
    b"HTTP/1.1 200 OK\r\nbad name: 1\r\ncontent-length: 2\r\n\r\nhi",
    b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nhiHTTP/1.1 200 OK\r\n",
    b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nhi",
]


@pytest.mark.parametrize("data", EDGE_HEADS)
@pytest.mark.parametrize("eof", [False, True])
def test_edge_heads_equal_h11_whole_and_bytewise(data: bytes, eof: bool) -> None:
    # The corners the properties may not draw on a given run, always checked.
    for pieces in ([data], [data[i : i + 1] for i in range(len(data))]):
        for method in ("GET", "POST", "HEAD"):
            ours = through_ours(pieces, method, False, eof)
            assert ours == through_h11(pieces, method, False, eof)
