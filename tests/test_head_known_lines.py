"""The plain-head reader's known lines (``_head._known_status`` and
``_known_fields``): a line read before answers from the dict, and that answer
is the one the rules give for the same bytes, whatever else the head holds
(a repeated or conflicting framing line still goes to h11); the dicts stay
within their caps when every response brings new lines (a Date, a length)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import given, settings

from gptalk_proto import _head
from gptalk_proto._head import MAX_KNOWN_LINE, MAX_KNOWN_LINES, PlainHead, read_head

from .test_head import LIMIT, heads


@pytest.fixture(autouse=True)
def _no_known_lines() -> Iterator[None]:
    # Each test starts with nothing known, and leaves what the process knew.
    status, fields = dict(_head._known_status), dict(_head._known_fields)
    _forget()
    yield
    _forget()
    _head._known_status.update(status)
    _head._known_fields.update(fields)


def _forget() -> None:
    _head._known_status.clear()
    _head._known_fields.clear()


def _cold(data: bytes) -> PlainHead | object | None:
    # What read_head says with no line known.
    _forget()
    return read_head(data, LIMIT)


@settings(max_examples=600, deadline=None)
@given(heads(), heads())
def test_known_lines_give_the_answer_the_rules_give(first: bytes, second: bytes) -> None:
    # The first head's lines become known; the second is then read with some
    # lines known (and the first again with all of them): both as if cold.
    want_first, want_second = _cold(first), _cold(second)
    assert read_head(first, LIMIT) == want_first
    assert read_head(second, LIMIT) == want_second
    assert read_head(first, LIMIT) == want_first
    assert read_head(second, LIMIT) == want_second


OK_JSON = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 12\r\n\r\n"


@pytest.mark.parametrize(
    "head",
    [
        # Known framing lines, repeated or combined: h11's answer, not ours.
        b"HTTP/1.1 200 OK\r\ncontent-length: 12\r\ncontent-length: 12\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ncontent-length: 12\r\ntransfer-encoding: chunked\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-length: 12\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ntransfer-encoding: chunked\r\n\r\n",
        # No framing line at all: read to EOF, h11's framing.
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n",
        # Not read here even when the status line is known elsewhere.
        b"HTTP/1.1 204 No Content\r\ncontent-length: 12\r\n\r\n",
    ],
)
def test_known_framing_lines_still_go_to_h11_when_the_head_is_not_plain(head: bytes) -> None:
    read_head(OK_JSON, LIMIT)
    read_head(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n", LIMIT)
    assert _head._known_fields  # the lines above are known now
    assert read_head(head, LIMIT) is None


def test_a_known_connection_close_line_says_close_each_time() -> None:
    head = b"HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\ncontent-length: 0\r\n\r\n"
    for _ in range(3):
        found = read_head(head, LIMIT)
        assert isinstance(found, PlainHead)
        assert found.keep_alive is False
        assert found.headers == [(b"connection", b"keep-alive, Close"), (b"content-length", b"0")]
    assert read_head(OK_JSON, LIMIT) == PlainHead(
        200,
        [(b"content-type", b"application/json"), (b"content-length", b"12")],
        len(OK_JSON),
        12,
        True,
    )


def test_new_lines_in_every_response_stay_within_the_cap() -> None:
    statuses = [s for s in range(205, 600) if s != 304]  # not the bodiless 204 and 304
    known_before = True
    for number in range(MAX_KNOWN_LINES * 3):
        head = (
            b"HTTP/1.1 %d OK\r\ndate: Thu, 03 Dec 2026 12:%02d:%02d GMT\r\n"
            b"content-type: application/json\r\ncontent-length: %d\r\n\r\n"
            % (statuses[number], number // 60, number % 60, number)
        )
        found = read_head(head, LIMIT)
        assert isinstance(found, PlainHead)
        assert (found.status, found.length) == (statuses[number], number)
        assert found.headers[1] == (b"content-type", b"application/json")
        assert len(_head._known_status) <= MAX_KNOWN_LINES
        assert len(_head._known_fields) <= MAX_KNOWN_LINES
        # The newest lines are known; the line every response sends is
        # learnt again at the next response after the dict emptied at the
        # cap (so it is known after one response of any two).
        assert head.split(b"\r\n")[0] in _head._known_status
        known = b"content-type: application/json" in _head._known_fields
        assert known or known_before
        known_before = known
    # Known or not, lines are read right.
    assert read_head(OK_JSON, LIMIT) == _cold(OK_JSON)


def test_a_long_line_is_read_but_not_kept() -> None:
    value = b"x" * MAX_KNOWN_LINE
    head = b"HTTP/1.1 200 OK\r\nx-long: %s\r\ncontent-length: 0\r\n\r\n" % value
    found = read_head(head, 4 * MAX_KNOWN_LINE)
    assert isinstance(found, PlainHead)
    assert found.headers[0] == (b"x-long", value)
    assert b"x-long: " + value not in _head._known_fields
    assert b"content-length: 0" in _head._known_fields
