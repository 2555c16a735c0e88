"""Requests are written byte for byte as h11 writes them (a differential test)."""

from __future__ import annotations

import h11
from hypothesis import given, settings
from hypothesis import strategies as st

import gptalk_proto as g
from gptalk_proto._http11 import write_request

NOW = 1_700_000_000.0

token = st.text("abcdefghijklmnopqrstuvwxyz0123456789-_.!#$%&'*+^`|~", min_size=1, max_size=12)
#: A field value's characters (a tab, visible Latin-1), unstripped.
raw_value = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f")
    | st.just("\t"),
    max_size=30,
)
value = raw_value.map(str.strip)


def through_h11(method: str, target: str, headers: list[tuple[str, str]], body: bytes) -> bytes:
    conn = h11.Connection(h11.CLIENT)
    out = conn.send(
        h11.Request(
            method=method,
            target=target,
            headers=[(n.encode(), v.encode("latin-1")) for n, v in headers],
        )
    )
    assert out is not None
    if body:
        out += conn.send(h11.Data(data=body)) or b""
    out += conn.send(h11.EndOfMessage()) or b""
    return out


@settings(max_examples=300, deadline=None)
@given(
    prompt=st.text(max_size=40),
    user_agent=value.filter(bool),
    extra=st.lists(st.tuples(token, value), max_size=4),
    proxy=st.lists(st.tuples(token, value), max_size=2),
    prefix=st.sampled_from(["", "http://example.test:8080"]),
    logged_in=st.booleans(),
)
def test_each_request_equals_h11s_bytes(
    *,
    prompt: str,
    user_agent: str,
    extra: list[tuple[str, str]],
    proxy: list[tuple[str, str]],
    prefix: str,
    logged_in: bool,
) -> None:
    credentials = g.Credentials()
    if logged_in:
        credentials.store("t" * 32, NOW + 3600)
    chat = g.Chat(
        prompt or "x",
        credentials=credentials,
        fingerprint="0" * 32,
        user_agent=user_agent,
        extra_headers=extra,
    )
    conn = g.ClientConnection(chat, host="example.test", target_prefix=prefix, proxy_headers=proxy)
    ours = conn.send(now=NOW)
    request = chat.request
    assert request is not None
    headers = [("host", "example.test"), *request.headers, *[(n.lower(), v) for n, v in proxy]]
    if request.method != "GET" or request.body:
        headers.append(("content-length", str(len(request.body))))
    assert ours == through_h11(request.method, prefix + request.target, headers, request.body)


def test_the_stream_request_too() -> None:
    credentials = g.Credentials()
    credentials.store("t" * 32, NOW + 3600)
    chat = g.Chat("hi", credentials=credentials, fingerprint="0" * 32)
    conn = g.ClientConnection(chat, host="h")
    conn.send(now=NOW)
    body = b'{"code": 0, "data": {"token": "s"}}'
    conn.receive_data(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body))
    while conn.next_event() is not g.SEND_REQUEST:
        pass
    ours = conn.send(now=NOW)
    request = chat.request
    assert request is not None
    assert request.kind == "stream"
    headers = [("host", "h"), *request.headers]
    assert ours == through_h11("GET", request.target, headers, b"")


@settings(max_examples=200, deadline=None)
@given(
    method=st.sampled_from(["GET", "POST"]),
    headers=st.lists(st.tuples(token, value), max_size=6),
    body=st.binary(max_size=20),
)
def test_write_request_is_one_crlf_line_per_field(
    *, method: str, headers: list[tuple[str, str]], body: bytes
) -> None:
    # The fields are joined in C; the text is the field-by-field one, and no
    # fields at all (not h11's case: it wants a Host) still end the head.
    fields = "".join(f"{name}: {value}\r\n" for name, value in headers)
    expected = f"{method} /t HTTP/1.1\r\n{fields}\r\n".encode("latin-1") + body
    assert write_request(method, "/t", headers, body) == expected
