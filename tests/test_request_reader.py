"""The reader the recorder and the replayer share: a client's bytes in,
whole requests out, however the bytes were cut."""

from __future__ import annotations

import random

import pytest

from gptalk_proto._errors import InvalidHTTP
from gptalk_proto.cassette._request_reader import RequestReader

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
