"""The replay server matches with the client-side replayer's matcher (one
implementation, in the core): a wrong request gets, in its 409 and on the
server's mismatch line, the very differences the replayer names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import gptalk_proto as g
import gptalk_proto.cassette
from gptalk_transports import load_cassette

PLAIN = load_cassette(Path(__file__).resolve().parent.parent / "cassettes" / "plain-chat.json")
LOGIN = PLAIN.interactions[0].request

#: A wrong login each: a header changed, a body field changed, the path, the method.
WRONG = {
    "header": (
        "POST",
        LOGIN.target,
        [(n, "curl/8" if n == "user-agent" else v) for n, v in LOGIN.headers],
        LOGIN.body,
    ),
    "body field": (
        "POST",
        LOGIN.target,
        LOGIN.headers,
        LOGIN.body.replace(b'"platform": "fingerprint"', b'"platform": "web"').replace(
            b'"platform":"fingerprint"', b'"platform":"web"'
        ),
    ),
    "path": ("POST", "/api/chatgpt/user/logon", LOGIN.headers, LOGIN.body),
    "method": ("PUT", LOGIN.target, LOGIN.headers, LOGIN.body),
}


@pytest.mark.parametrize("wrong", list(WRONG), ids=list(WRONG))
def test_the_server_names_what_the_replayer_names(wrong: str) -> None:
    method, target, headers, body = WRONG[wrong]
    assert body != LOGIN.body or (method, target, headers) != (
        LOGIN.method,
        LOGIN.target,
        LOGIN.headers,
    )
    with pytest.raises(g.cassette.CassetteMismatch) as info:
        g.cassette.Replayer(PLAIN).match(method, target, list(headers), body)
    want = info.value
    assert want.differences
    fields = [(n, v) for n, v in headers if n.lower() != "content-length"]
    raw = (
        f"{method} {target} HTTP/1.1\r\n".encode()
        + b"".join(f"{n}: {v}\r\n".encode() for n, v in fields)
        + b"content-length: %d\r\n\r\n" % len(body)
        + body
    )
    actions = g.cassette.ReplayServer([PLAIN], speed=0).connection().receive_data(raw)
    [mismatch] = [a for a in actions if isinstance(a, g.cassette.ReplayMismatch)]
    sent = b"".join(a.data for a in actions if isinstance(a, g.cassette.ReplayWrite))
    document = json.loads(sent.split(b"\r\n\r\n", 1)[1])
    assert sent.startswith(b"HTTP/1.1 %d " % g.cassette.MISMATCH_STATUS)
    assert document["step"] == 1
    assert document["differences"] == list(want.differences)
    assert mismatch.text == document["detail"]
    for difference in want.differences:
        assert difference in mismatch.text
