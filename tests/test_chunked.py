"""The chunked-body decoder equals h11 on any input (a differential test)."""

from __future__ import annotations

import itertools

import h11
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gptalk_proto import RemoteProtocolError
from gptalk_proto._http11 import ChunkedDecoder

LIMIT = 512  # a small incomplete-event cap, so the cap is exercised too
HEAD = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"

Outcome = tuple[bytes, bool, bool, bytes]  # body, done, failed, leftover


def through_h11(pieces: list[bytes]) -> Outcome:
    conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=LIMIT)
    conn.send(h11.Request(method="GET", target="/", headers=[("host", "x")]))
    conn.send(h11.EndOfMessage())
    conn.receive_data(HEAD)
    assert isinstance(conn.next_event(), h11.Response)
    body = b""
    try:
        for number, piece in enumerate([*pieces, b""]):
            conn.receive_data(piece)
            while True:
                event = conn.next_event()
                if isinstance(event, h11.Data):
                    body += event.data
                elif isinstance(event, h11.EndOfMessage):
                    # The rest is the next response's: it stays unread.
                    for rest in pieces[number + 1 :]:
                        conn.receive_data(rest)
                    leftover, _ = conn.trailing_data
                    return body, True, False, leftover
                else:
                    break
    except h11.RemoteProtocolError:
        return body, False, True, b""
    return body, False, False, b""


def through_ours(pieces: list[bytes]) -> Outcome:
    decoder = ChunkedDecoder(max_line=LIMIT)
    body = b""
    try:
        for piece in pieces:
            body += decoder.feed(piece)
        if decoder.done:
            return body, True, False, bytes(decoder.leftover)
        decoder.eof()
    except RemoteProtocolError as exc:
        return body + getattr(exc, "partial", b""), False, True, b""
    return body, decoder.done, False, b""


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    edges = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(edges) if b > a]


@st.composite
def chunked_bodies(draw: st.DrawFn) -> bytes:
    parts = []
    for data in draw(st.lists(st.binary(min_size=1, max_size=200), max_size=6)):
        size = format(len(data), "X" if draw(st.booleans()) else "x")
        size = "0" * draw(st.integers(0, 3)) + size
        ext = draw(st.sampled_from(["", ";a=b", ';name="q v"', ";;", ";\r"]))
        ows = draw(st.sampled_from(["", " ", "\t ", "  "]))
        parts.append(f"{size}{ext}{ows}\r\n".encode("latin-1") + data + b"\r\n")
    parts.append(draw(st.sampled_from([b"0\r\n", b"000;x=1\r\n", b"0 \r\n"])))
    trailers = draw(
        st.lists(
            st.sampled_from(
                [b"x-a: 1", b'etag:  "abc" ', b"x-b:", b"  folded", b"\tmore", b"x-c: a b  c"]
            ),
            max_size=3,
        )
    )
    parts.extend(t + draw(st.sampled_from([b"\r\n", b"\n"])) for t in trailers)
    parts.append(draw(st.sampled_from([b"\r\n", b"\n"])))
    parts.append(draw(st.binary(max_size=20)))  # the next response, if any
    return b"".join(parts)


@settings(max_examples=400, deadline=None)
@given(chunked_bodies(), st.lists(st.integers(0, 2000), max_size=8))
def test_equal_to_h11_on_valid_bodies(body: bytes, cuts: list[int]) -> None:
    pieces = split(body, cuts)
    assert through_ours(pieces) == through_h11(pieces)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    body = bytearray(draw(chunked_bodies()))
    for _ in range(draw(st.integers(1, 3))):
        if not body:
            break
        index = draw(st.integers(0, len(body) - 1))
        action = draw(st.sampled_from(["flip", "drop", "insert"]))
        if action == "flip":
            body[index] = draw(st.sampled_from(b"\r\n;0aZ \t:\x00\xff"))
        elif action == "drop":
            del body[index]
        else:
            body.insert(index, draw(st.sampled_from(b"\r\n;0 :")))
    return bytes(body)


@settings(max_examples=600, deadline=None)
@given(mutated(), st.lists(st.integers(0, 2000), max_size=8))
def test_equal_to_h11_on_damaged_bodies(body: bytes, cuts: list[int]) -> None:
    pieces = split(body, cuts)
    assert through_ours(pieces) == through_h11(pieces)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.lists(st.integers(0, 400), max_size=6))
def test_equal_to_h11_on_arbitrary_bytes(body: bytes, cuts: list[int]) -> None:
    pieces = split(body, cuts)
    assert through_ours(pieces) == through_h11(pieces)


# Runs of whole chunks in one read, as a server that flushes every event
# sends them (the decoder cuts such a run one step per chunk): data that
# looks like framing, a run broken by an extension, a bad footer or a huge
# size, and the last chunk inside the run.
RUNS = [
    b"".join(b"%x\r\n%s\r\n" % (len(d), d) for d in (b"data: a\n\n", b"\r\n5\r\n", b"x" * 300))
    + b"0\r\n\r\nNEXT",
    b"3\r\nabc\r\n3;e=1\r\ndef\r\n3\r\nghi\r\n0\r\n\r\n",
    b"3\r\nabc\r\n3\r\ndefXX3\r\nghi\r\n0\r\n\r\n",
    b"3\r\nabc\r\n3\r\ndef\r\n" + b"F" * 20 + b"\r\nghi\r\n",
    b"3\r\nabc\r\n3\r\ndef\r\n3\r\ngh",
    b"3\r\nabc\r\n0\r\nx-t: 1\r\n\r\n3\r\nnot\r\n",
]


@pytest.mark.parametrize("body", RUNS)
@pytest.mark.parametrize("step", [1, 2, 7, 10_000])
def test_runs_of_whole_chunks_read_as_h11_reads_them(body: bytes, step: int) -> None:
    pieces = [body[i : i + step] for i in range(0, len(body), step)]
    assert through_ours(pieces) == through_h11(pieces)


@pytest.mark.parametrize(
    "body",
    [
        b"5\r\nhello\r\n0\r\n\r\n",
        b"5;ext\r\nhello\r\n0\r\nx-t: 1\r\n\r\nNEXT",
        b"1" * 21 + b"\r\n",  # over 20 hex digits
        b"5\r\nhelloXX",  # a bad footer
        b"zz\r\n",
        b"5\r\nhel",  # cut short
        b"0\r\n bad-fold\r\n\r\n",
        b"f" * (LIMIT + 10),  # a size line with no end
    ],
)
def test_examples_whole_and_bytewise(body: bytes) -> None:
    whole = [body]
    bytewise = [body[i : i + 1] for i in range(len(body))]
    assert through_ours(whole) == through_h11(whole)
    assert through_ours(bytewise) == through_h11(bytewise)


@pytest.mark.parametrize(
    "line",
    [
        b"A", b"a", b"0a", b"00000000000000000005", b"000000000000000000005",
        b"FFFFFFFFFFFFFFFFFFFF", b"fffffffffffffffffffff", b"0x5", b"+5", b"-5", b" 5",
        b"5 ", b"5\t", b"5;ext=1", b"5 ;x", b"5;\x00", b"", b"g", b"\xd9\xa5", b"1_0",
    ],
)  # fmt: skip
@pytest.mark.parametrize("eol", [b"\r\n", b"\n", b"\r", b"\r\r\n"])
def test_size_lines_read_as_h11_reads_them(line: bytes, eol: bytes) -> None:
    """Hostile size lines (case, zeros, length, signs, 0x, spaces, extensions,
    lone line ends, non-ASCII digits), whole and trickled byte by byte."""
    body = line + eol + b"x" * 5 + b"\r\n" + b"0\r\n\r\n"
    for pieces in ([body], [body[i : i + 1] for i in range(len(body))]):
        assert through_ours(pieces) == through_h11(pieces)


@settings(max_examples=100, deadline=None)
@given(size=st.integers(1, 5000), cuts=st.lists(st.integers(0, 5100), max_size=8), data=st.data())
def test_a_read_inside_one_chunk_is_the_body_uncopied(
    size: int, cuts: list[int], data: st.DataObject
) -> None:
    # A chunk longer than the reads that bring it (a long event): a read that
    # is all chunk data comes out as the same bytes object, and the body is
    # h11's at every split.
    payload = data.draw(st.binary(min_size=size, max_size=size))
    body = b"%x\r\n%s\r\n0\r\n\r\n" % (len(payload), payload)
    start = body.index(b"\r\n") + 2
    reads = split(body, cuts)
    decoder = ChunkedDecoder()
    out = []
    offset = 0
    for read in reads:
        got = decoder.feed(read)
        if read and start <= offset and offset + len(read) <= start + size:
            assert got is read
        out.append(got)
        offset += len(read)
    assert b"".join(out) == payload
    assert decoder.done
