"""The reader the recorder and the replayer share: a client's bytes in,
whole requests out, however the bytes were cut."""

from __future__ import annotations

import random

import pytest

from gptalk_proto._errors import InvalidHTTP
from gptalk_proto.cassette._request_reader import (
    MAX_KNOWN_BLOCK,
    MAX_KNOWN_BLOCKS,
    KnownFields,
    RequestReader,
)

LOGIN = (
    b'POST /api/chatgpt/user/login HTTP/1.1\r\nhost: x\r\ncontent-length: 13\r\n\r\n{"a": "b c"}\n'
)
STREAM = b"GET /api/chatgpt/chatapi/stream?token=S HTTP/1.1\r\nhost: x\r\n\r\n"
WIRE = LOGIN + STREAM


def read(pieces: list[bytes]) -> list[tuple[bytes, bytes, bytes, float]]:
    reader = RequestReader(1024)
    out = []
    for t, piece in enumerate(pieces):
        for head, body, at in reader.feed(piece, float(t)):
            out.append((head.method, head.target, body, at))
    return out


def test_two_requests_in_one_write() -> None:
    assert read([WIRE]) == [
        (b"POST", b"/api/chatgpt/user/login", b'{"a": "b c"}\n', 0.0),
        (b"GET", b"/api/chatgpt/chatapi/stream?token=S", b"", 0.0),
    ]


@pytest.mark.parametrize("seed", range(20))
def test_any_cut_gives_the_same_requests(seed: int) -> None:
    rng = random.Random(seed)
    cuts = sorted(rng.sample(range(1, len(WIRE)), rng.randint(1, 12)))
    pieces = [WIRE[a:b] for a, b in zip([0, *cuts], [*cuts, len(WIRE)], strict=True)]
    whole = [(m, t, b) for m, t, b, _ in read([WIRE])]
    assert [(m, t, b) for m, t, b, _ in read(pieces)] == whole


def test_byte_by_byte_stamps_each_request_when_its_head_is_complete() -> None:
    found = read([WIRE[i : i + 1] for i in range(len(WIRE))])
    assert [at for *_, at in found] == [
        float(LOGIN.index(b"\r\n\r\n") + 3),
        float(len(LOGIN) + len(STREAM) - 1),
    ]


def test_a_body_over_the_cap_is_refused() -> None:
    reader = RequestReader(16)
    with pytest.raises(InvalidHTTP, match="over 16 bytes"):
        reader.feed(b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 17\r\n\r\n" + b"x" * 17)


def test_invalid_http_is_refused() -> None:
    with pytest.raises(InvalidHTTP):
        RequestReader(1024).feed(b"NOT HTTP\r\n\r\n")


def _outcome(reader: RequestReader, pieces: list[bytes]) -> object:
    """What a reader made of the pieces: each request's parts, or the error."""
    found = []
    try:
        for piece in pieces:
            for head, body, _ in reader.feed(piece):
                found.append((head.method, head.target, head.raw_headers, head.headers, body))
    except InvalidHTTP as exc:
        return found, "invalid", exc.status_hint
    return found


HEADS = [
    b"GET / HTTP/1.1\r\nhost: x\r\n\r\n",
    b"POST /a?b=c HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc",
    b"POST / HTTP/1.1\r\nhost:x\r\ncontent-length:  2 \r\nX-A:\t v  w \t\r\n\r\nab",
    b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\ncontent-length: 2\r\n\r\nab",
    b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\nabc",
    b"POST / HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n",
    b"GET / HTTP/1.0\r\n\r\n",
    b"GET / HTTP/1.1\r\n\r\n",  # no host
    b"GET / HTTP/1.1\nhost: x\n\n",
    b"GET / HTTP/1.1\r\nhost: x\nother: y\r\n\r\n",
    b"GET / HTTP/1.1\r\nhost: \xc3\xa9\r\n\r\n",
    b"GET / HTTP/1.1\r\nhost : x\r\n\r\n",
    b"GET / HTTP/1.1\r\nhost: x\r\n folded\r\n\r\n",
    b"GET  / HTTP/1.1\r\nhost: x\r\n\r\n",
    b"\r\nGET / HTTP/1.1\r\nhost: x\r\n\r\n",
    b"G@T / HTTP/1.1\r\nhost: x\r\n\r\n",
    b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: -1\r\n\r\n",
    b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 2000\r\n\r\n",
    b"CONNECT gptalk.net:443 HTTP/1.1\r\nhost: gptalk.net:443\r\n\r\n",
    b"GET http://h/p?q HTTP/1.1\r\nhost: h\r\nexpect: 100-continue\r\nconnection: close\r\n\r\n",
]


class _H11Only(RequestReader):
    """The reader with its plain path off: h11 reads everything."""

    __slots__ = ()

    def _plain(self, data: bytes, t: float) -> None:
        return None


@pytest.mark.parametrize("index", range(len(HEADS)))
def test_whole_writes_read_as_h11_alone_reads_them(index: int) -> None:
    """Differential: requests written whole -- the plain path's case --
    read to what h11 alone reads from the same writes, errors included."""
    for wire in (HEADS[index], HEADS[index] + STREAM, LOGIN + HEADS[index]):
        for pieces in ([wire], [wire, STREAM], [LOGIN, wire]):
            assert _outcome(RequestReader(1024), pieces) == _outcome(_H11Only(1024), pieces)


def test_plain_requests_skip_h11() -> None:
    """What the differential test covers is the plain path's, for these."""
    for wire in (LOGIN, STREAM, *HEADS[:3], HEADS[-1]):
        assert RequestReader(1024)._plain(wire, 0.0) is not None  # private: the path taken
    assert RequestReader(1024)._plain(HEADS[5], 0.0) is None  # chunked: h11's


def _hostile() -> list[bytes]:
    post = b"POST / HTTP/1.1\r\nhost: x\r\n"
    return [
        post + b"content-length: +2\r\n\r\nab",
        post + b"content-length: 002\r\n\r\nab",
        post + b"content-length: 2, 2\r\n\r\nab",
        post + b"content-length: 2,3\r\n\r\nabc",
        post + b"content-length: 99999999999999999999\r\n\r\nab",
        post + b"content-length: 999999999999999999999\r\n\r\nab",
        post + b"content-length: 0x2\r\n\r\nab",
        post + b"content-length: 2\r\nContent-Length: 02\r\n\r\nab",
        post + b"content-length: 3\r\n\r\nab",  # a body short of its length
        post + b"content-length: 1\r\n\r\nab",  # longer: the rest is a request
        post + b"Transfer-Encoding: Chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n",
        post + b"TRANSFER-ENCODING: chunked\r\ncontent-length: 2\r\n\r\n2\r\nab\r\n0\r\n\r\n",
        post + b"x-a: a\x00b\r\n\r\n",
        post + b"x-a: a\x7fb\r\n\r\n",
        post + b"x-a: \x80\xff\r\n\r\n",
        post + b"x-a: a\rb\r\n\r\n",
        post + b"x-a: a\x0bb\r\n\r\n",
        post + b"x\x00a: b\r\n\r\n",
        post + b"x a: b\r\n\r\n",
        post + b"x-a\t: b\r\n\r\n",
        post + b": b\r\n\r\n",
        post + b"host: y\r\n\r\n",
        b"GET http://h/p HTTP/1.1\r\nhost: h\r\n\r\n",
        b"GET * HTTP/1.1\r\nhost: h\r\n\r\n",
        b"GET /\x80 HTTP/1.1\r\nhost: h\r\n\r\n",
        b"GET / HTTP/1.0\r\nhost: h\r\n\r\n",
        b"GET / HTTP/1.1\r\nhost: h\n\r\n",
        b"GET / HTTP/1.1\nhost: h\r\n\r\n",
        b"GET / HTTP/1.1\r\nhost: h\r\n\n",
        b"GET / HTTP/1.1\r\nhost: h\r\r\n\r\n",
        b"GET / HTTP/1.1\r\n" + b"a: b\r\n" * 200 + b"host: h\r\n\r\n",  # many tiny headers
        b"GET / HTTP/1.1\r\nhost: h\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n",
    ]


@pytest.mark.parametrize("index", range(len(_hostile())))
def test_hostile_requests_read_as_h11_alone_reads_them_however_cut(index: int) -> None:
    """Differential, hostile: odd lengths, codings, bytes and line ends, whole,
    pipelined, cut anywhere and byte by byte, read as h11 alone reads them."""
    for wire in (_hostile()[index], _hostile()[index] + STREAM, LOGIN + _hostile()[index]):
        ways = [[wire], [wire[i : i + 1] for i in range(len(wire))]]
        ways += [[wire[:cut], wire[cut:]] for cut in range(1, len(wire), 3)]
        for pieces in ways:
            for cap in (1024, 64):
                assert _outcome(RequestReader(cap), pieces) == _outcome(_H11Only(cap), pieces)


@pytest.mark.parametrize("over", [-1, 0, 1])
def test_heads_and_bodies_about_the_cap_read_as_h11_alone_reads_them(over: int) -> None:
    """A head, or a body, a byte under, at, or a byte over the cap."""
    cap = 64

    def request(head_size: int, body_size: int) -> bytes:
        head = b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: %02d\r\nx-pad: \r\n\r\n" % body_size
        return (
            head.replace(b"x-pad: ", b"x-pad: " + b"p" * (head_size - len(head))) + b"b" * body_size
        )

    for wire in (request(cap + over, 1), request(50, cap + over)):
        for pieces in ([wire], [wire + STREAM], [wire[:-1], wire[-1:] + STREAM]):
            assert _outcome(RequestReader(cap), pieces) == _outcome(_H11Only(cap), pieces)


def _has_h11(reader: RequestReader) -> bool:
    return reader._h11 is not None  # private: whether an h11 connection was made


def test_after_a_request_h11_read_the_next_one_starts_fresh() -> None:
    """h11 reads a request cut across writes; once it ends with nothing past
    it, the next request goes the plain way again (no h11 connection is made
    for it), and bytes past a request stay with h11, which reads them."""
    reader = RequestReader(1024)
    assert not _has_h11(reader)  # none made before one is needed
    assert reader.feed(LOGIN[:10]) == []
    [(head, body, _)] = reader.feed(LOGIN[10:])
    assert (head.method, body) == (b"POST", b'{"a": "b c"}\n')
    assert not _has_h11(reader)
    assert reader._plain(STREAM, 0.0) is not None  # the path the next one takes
    [(head, _, _)] = reader.feed(STREAM)
    assert head.target == b"/api/chatgpt/chatapi/stream?token=S"
    assert not _has_h11(reader)
    # Cut again, with the next request's start in the write that ends it.
    assert reader.feed(LOGIN[:10]) == []
    [(head, _, _)] = reader.feed(LOGIN[10:] + STREAM[:5])
    assert head.method == b"POST"
    assert _has_h11(reader)
    [(head, _, _)] = reader.feed(STREAM[5:])
    assert head.target == b"/api/chatgpt/chatapi/stream?token=S"


# Bytes a mutation puts in a request: each of the kinds the plain path tells
# apart (token and value bytes, separators, NUL, the other whitespace, lone
# CR and LF, obs-text) and the lines that change its framing or host.
_MUTATIONS = [
    *(bytes([b]) for b in b'aZ1-!~:;,"()@\x00\x01\x1f\x7f\x80\xff \t\r\n\x0b\x0c'),
    b"\r\n",
    b"\r\nhost: y",
    b"\r\ncontent-length: 1",
    b"\r\nContent-Length: 01",
    b"\r\nTransfer-Encoding: chunked",
    b"\r\nX-A:  v w\t",
]

_PLAIN = (
    b"POST /api/chatgpt/chatapi/text HTTP/1.1\r\nhost: 127.0.0.1:8080\r\naccept: */*\r\n"
    b"user-agent: Mozilla/5.0 (X11; Linux x86_64)\r\nx-auth-openid: \r\n"
    b"Authorization:Bearer t \r\ncontent-length: 5\r\n\r\nhello"
)


def _mutated(rng: random.Random) -> bytes:
    wire = bytearray(_PLAIN)
    for _ in range(rng.randint(1, 3)):
        at = rng.randrange(len(wire))
        if rng.random() < 0.3:
            del wire[at]
        else:
            wire[at:at] = rng.choice(_MUTATIONS)
    return bytes(wire)


@pytest.mark.parametrize("seed", range(8))
def test_mutated_requests_read_as_h11_alone_reads_them_however_cut(seed: int) -> None:
    """Differential, at random: a plain request with a few bytes put in or
    taken out anywhere (its head's checks are scans of the whole head, not a
    match per line), whole, pipelined, byte by byte and cut at random, reads
    as h11 alone reads it."""
    rng = random.Random(seed)
    plain = 0
    for _ in range(60):
        wire = _mutated(rng)
        plain += RequestReader(1024)._plain(wire, 0.0) is not None  # private: the path
        cut = rng.randrange(1, len(wire))
        ways = [[wire], [wire + STREAM], [wire[:cut], wire[cut:]]]
        ways.append([wire[i : i + 1] for i in range(len(wire))])
        for pieces in ways:
            assert _outcome(RequestReader(1024), pieces) == _outcome(_H11Only(1024), pieces)
    assert plain  # some mutations leave the request plain: both paths were compared


def _every_wire() -> list[bytes]:
    rng = random.Random(7)
    return [LOGIN, STREAM, _PLAIN, *HEADS, *_hostile(), *(_mutated(rng) for _ in range(60))]


@pytest.mark.parametrize("cap", [1024, 64])
def test_known_field_lines_read_as_h11_alone_reads_them(cap: int) -> None:
    """Differential, with field lines remembered: one KnownFields shared by
    every reader (as a proxy's connections share one), each request read
    cold and then again warm, whole, pipelined and cut, reads as h11 alone
    reads it; so does each one after the cap has emptied the known lines."""
    known = KnownFields()
    for _ in range(2):
        for wire in _every_wire():
            for pieces in ([wire], [wire + STREAM], [LOGIN, wire], [wire[:9], wire[9:]]):
                want = _outcome(_H11Only(cap), pieces)
                assert _outcome(RequestReader(cap, known), pieces) == want
                assert len(known) <= MAX_KNOWN_BLOCKS


def test_known_field_lines_are_read_once() -> None:
    """A block of field lines seen before is not read again: the next
    request with it shares what was read (its lists, never changed)."""
    known = KnownFields()
    [(first, _, _)] = RequestReader(1024, known).feed(LOGIN)
    [(again, _, _)] = RequestReader(1024, known).feed(LOGIN)
    assert again.raw_headers is first.raw_headers
    assert again.headers is first.headers
    assert again.fields == LOGIN[LOGIN.index(b"\r\n") + 2 : LOGIN.index(b"\r\n\r\n")]
    # Another request line, the same lines: read once too.
    other = LOGIN.replace(b"/api/chatgpt/user/login", b"/other?x=1")
    [(third, _, _)] = RequestReader(1024, known).feed(other)
    assert (third.target, third.raw_headers) == (b"/other?x=1", first.raw_headers)
    assert third.raw_headers is first.raw_headers
    assert len(known) == 1
    # Without a KnownFields, each request's lines are read anew.
    [(cold, _, _)] = RequestReader(1024).feed(LOGIN)
    assert cold.raw_headers == first.raw_headers
    assert cold.raw_headers is not first.raw_headers


def test_known_field_lines_stay_within_their_caps() -> None:
    """At most MAX_KNOWN_BLOCKS blocks, each of at most MAX_KNOWN_BLOCK
    bytes: one block too many empties the others first (the newest is
    known), and a larger block is read every time (and has no ``fields``)."""
    known = KnownFields()
    for number in range(MAX_KNOWN_BLOCKS * 3):
        wire = b"GET / HTTP/1.1\r\nhost: x\r\nx-n: %d\r\n\r\n" % number
        [(head, _, _)] = RequestReader(1024, known).feed(wire)
        assert head.headers[-1] == (b"x-n", b"%d" % number)
        assert 1 <= len(known) <= MAX_KNOWN_BLOCKS
        assert known._blocks.get(head.fields) is not None  # private: the newest is known
    for size, kept in ((MAX_KNOWN_BLOCK, True), (MAX_KNOWN_BLOCK + 1, False)):
        known = KnownFields()
        lines = b"host: x\r\nx-pad: "
        lines += b"p" * (size - len(lines))
        wire = b"GET / HTTP/1.1\r\n" + lines + b"\r\n\r\n"
        [(head, _, _)] = RequestReader(4 * MAX_KNOWN_BLOCK, known).feed(wire)
        assert head.headers == [(b"host", b"x"), (b"x-pad", lines[16:])]
        assert head.fields == (lines if kept else b"")
        assert len(known) == kept
