"""Hypothesis strategies for what clients send a GPTalk server.

:func:`gptalk_requests` draws the bytes one client connection sends: valid
login, text and stream requests (framed by ``Content-Length`` or chunked,
pipelined, with varied header case and extra headers), hostile ones (every
method, targets ``urlsplit`` rejects, JSON nested thousands deep, lying or
doubled lengths, chunked malformations, HTTP/1.0 and /0.9, an h2 preface, a
TLS hello, bad UTF-8, wrong JSON types), grammar-aware mutations of both
(header lines dropped, doubled or swapped, line ends changed, spaces around
colons) and byte-level ones, or arbitrary bytes.  A correct server answers
each with a response or closes; :func:`~gptalk_proto.testing.play_requests`
feeds them to a :class:`~gptalk_proto.server.ServerConnection`.
"""

from __future__ import annotations

import json

from hypothesis import strategies as st

from .._wire import LOGIN_PATH, STREAM_PATH, TEXT_PATH

__all__ = ["ZERO_TOKEN", "gptalk_requests"]

#: The token drawn requests carry by default: the login and stream token a
#: :class:`~gptalk_proto.server.Service` issues when its entropy gives zero bytes
#: (``Service(entropy=bytes)``), so that drawn chats reach the stream.
ZERO_TOKEN = "00" * 16

_FINGERPRINT = "0123456789abcdef" * 2
_METHODS = [b"GET", b"POST", b"HEAD", b"PUT", b"DELETE", b"OPTIONS", b"TRACE", b"CONNECT", b"PRI"]
_PATHS = [LOGIN_PATH, TEXT_PATH, STREAM_PATH, "/", "/api", "/api/chatgpt/user/login/", "*"]
_BAD_TARGETS = [
    b"//[x",
    b"http://[oops/api",
    b"http://[::1/api/chatgpt/user/login",
    b"//[",
    b"http://x:99999" + STREAM_PATH.encode(),
    b"/%zz%00?token=%ff",
    STREAM_PATH.encode() + b"?token=a&token=b",
    STREAM_PATH.encode() + b"?token=&&&;=",
    b"*",
    b"example.com:443",
]
# Whole connections' worth of bytes that are not HTTP/1.1 at all.
_FOREIGN = [
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",  # the h2 preface
    b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + bytes(32),  # a TLS client hello
    b"GET /\r\n",  # HTTP/0.9
    b"\r\n\r\n\r\n",
    b"GET / HTTP/1.1\n\n",
]
# Request headers that change how a request is read.
_FRAMING_HEADERS = [
    b"content-length: 5",
    b"content-length: -1",
    b"content-length: 99999999999999999999",
    b"content-length: 3, 4",
    b"content-length: 0x10",
    b"transfer-encoding: chunked",
    b"transfer-encoding: gzip, chunked",
    b"transfer-encoding: identity",
    b"expect: 100-continue",
    b"connection: close",
    b"connection: upgrade\r\nupgrade: websocket",
    b"connection: keep-alive",
    b"host: a\r\nhost: b",
    b" folded: continuation",
    b"x-bin: \xff\xfe\x00",
    b"authorization: Bearer \xc3\x28",
]
_CHUNKED_BODIES = [
    b"zz\r\nabc\r\n0\r\n\r\n",
    b"ffffffffffffffffff\r\n",
    b"3\r\nabcdef\r\n0\r\n\r\n",
    b"3;ext=1\r\nabc\r\n0\r\ntrailer: x\r\n\r\n",
    b"-1\r\n",
    b"0\r\n",
]
# Bodies for the JSON endpoints that are not what they expect.
_BAD_BODIES = [
    b"",
    b"{",
    b"null",
    b"[]",
    b'"x"',
    b"1e999999",
    b'{"content": 1, "accept": "stream"}',
    b'{"content": "x", "accept": "stream", "model": ["m"]}',
    b'{"content": "\\ud800\\udfff\\udc00", "accept": "stream"}',
    b'{"fingerprint": null, "platform": "fingerprint"}',
    b"\xff\xfe{\x00}\x00",  # UTF-16
    b'\xef\xbb\xbf{"content": "bom", "accept": "stream"}',
    b'{"content": "\xc3\x28", "accept": "stream"}',  # bad UTF-8
    b'{"a": ' * 3 + b"1" + b"}" * 3,
]
_LINE_ENDS = [b"\r\n", b"\n", b"\r", b"\r\r\n", b""]
_INSERTS = [b"\r", b"\n", b"\r\n", b"\r\n\r\n", b":", b" ", b"\x00", b"0\r\n\r\n", b"{", b'"']


def _deep_json(draw: st.DrawFn) -> bytes:
    depth = draw(st.sampled_from([31, 32, 33, 100, 3000, 5000]))
    opener = draw(st.sampled_from([b"[", b'{"a":', b'{"content": "x", "accept": "stream", "m":']))
    closer = b"]" if opener == b"[" else b"}"
    return opener * depth + b"1" + closer * draw(st.sampled_from([depth, 0]))


def _prompt(draw: st.DrawFn) -> str:
    return draw(
        st.text(st.characters(codec="utf-8"), max_size=40)
        | st.sampled_from(['"', "\\", "[" * 40, "\u2028", "\U0001f600" * 3, "a" * 500])
    )


def _body(draw: st.DrawFn, target: str, valid: bool) -> bytes:
    """A body for a request to ``target``: what its endpoint wants, or not."""
    kind = "right" if valid else draw(st.sampled_from(["right", "right", "bad", "deep"]))
    if kind == "bad":
        return draw(st.sampled_from(_BAD_BODIES))
    if kind == "deep":
        return _deep_json(draw)
    if target.startswith(LOGIN_PATH):
        return json.dumps({"fingerprint": _FINGERPRINT, "platform": "fingerprint"}).encode()
    content = _prompt(draw)
    value = {"content": content, "accept": "stream", "model": draw(st.sampled_from(["m", ""]))}
    return json.dumps(value, ensure_ascii=draw(st.booleans())).encode("utf-8", "surrogatepass")


def _frame_body(draw: st.DrawFn, body: bytes, valid: bool) -> tuple[list[bytes], bytes]:
    """Framing headers and the framed body."""
    hows = ["length", "chunked"] if valid else ["length", "length", "chunked", "none", "lying"]
    how = draw(st.sampled_from(hows))
    if how == "length":
        return [b"content-length: %d" % len(body)], body
    if how == "lying":
        told = max(0, len(body) + draw(st.integers(-8, 8)))
        return [b"content-length: %d" % told], body
    if how == "none":
        return [], body if draw(st.booleans()) else b""
    size = draw(st.integers(1, 16))
    chunks = [body[i : i + size] for i in range(0, len(body), size)]
    framed = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for chunk in chunks)
    return [b"transfer-encoding: chunked"], framed + b"0\r\n\r\n"


def _request(draw: st.DrawFn, token: str, endpoint: str | None = None) -> bytes:
    """One request: valid for ``endpoint`` when it is given, else to a drawn
    endpoint and hostile in some way or not."""
    valid = endpoint is not None
    if endpoint is None:
        endpoint = draw(st.sampled_from(["login", "text", "stream", "other"]))
    method = {"login": b"POST", "text": b"POST", "stream": b"GET"}.get(endpoint, b"GET")
    path = {"login": LOGIN_PATH, "text": TEXT_PATH, "stream": f"{STREAM_PATH}?token={token}"}.get(
        endpoint, draw(st.sampled_from(_PATHS))
    )
    target = path.encode()
    if valid:
        if endpoint == "stream" and draw(st.integers(0, 3)) == 0:
            method = b"HEAD"  # the head of the stream; the token stays
    else:
        if draw(st.integers(0, 3)) == 0:
            method = draw(st.sampled_from(_METHODS))
        if draw(st.integers(0, 5)) == 0:
            target = draw(st.sampled_from(_BAD_TARGETS))
        elif draw(st.integers(0, 7)) == 0:
            target = b"http://gptalk.test" + target  # absolute form, as through a proxy
    versions = [b"HTTP/1.1"] if valid else [b"HTTP/1.1"] * 6 + [b"HTTP/1.0", b"HTTP/2.0"]
    version = draw(st.sampled_from(versions))
    headers = [b"host: gptalk.test"] if valid or draw(st.integers(0, 9)) else []
    if endpoint == "text":
        headers.append(f"authorization: Bearer {token}".encode())
    body = b""
    if method in (b"POST", b"PUT") or (not valid and draw(st.integers(0, 9)) == 0):
        framing, body = _frame_body(draw, _body(draw, path, valid), valid)
        headers += framing
    if not valid and draw(st.integers(0, 3)) == 0:
        headers.append(draw(st.sampled_from(_FRAMING_HEADERS)))
        if headers[-1].startswith(b"transfer-encoding: chunked") and draw(st.booleans()):
            body = draw(st.sampled_from(_CHUNKED_BODIES))
    if draw(st.booleans()):
        headers = [header.title() for header in headers]  # names are case-insensitive
    if draw(st.integers(0, 4)) == 0:
        headers.append(b"x-extra: " + b"v" * draw(st.integers(0, 64)))
    head = b"\r\n".join([method + b" " + target + b" " + version, *headers])
    return head + b"\r\n\r\n" + body


def _mutate(draw: st.DrawFn, data: bytes) -> bytes:
    """One grammar-aware change (on lines, line ends, colons) or byte-level one."""
    how = draw(
        st.sampled_from(["drop-line", "double-line", "swap-lines", "line-end", "colon"])
        | st.sampled_from(["flip", "drop", "insert", "repeat", "truncate"])
    )
    lines = data.split(b"\r\n")
    if how in ("drop-line", "double-line", "swap-lines", "line-end"):
        i = draw(st.integers(0, len(lines) - 1))
        j = draw(st.integers(0, len(lines) - 1))
        if how == "drop-line":
            del lines[i]
        elif how == "double-line":
            lines.insert(i, lines[i])
        elif how == "swap-lines":
            lines[i], lines[j] = lines[j], lines[i]
        else:
            # One line end swapped for a bare LF, a bare CR, or nothing.
            end = draw(st.sampled_from(_LINE_ENDS))
            if i < len(lines) - 1:
                lines[i : i + 2] = [lines[i] + end + lines[i + 1]]
        return b"\r\n".join(lines)
    if how == "colon" and b":" in data:
        at = data.index(b":", draw(st.integers(0, data.rindex(b":"))))
        return (
            data[:at] + draw(st.sampled_from([b" :", b": ", b"::", b"\t:", b""])) + data[at + 1 :]
        )
    out = bytearray(data)
    at = draw(st.integers(0, len(out)))
    if how == "flip" and at < len(out):
        out[at] ^= 1 << draw(st.integers(0, 7))
    elif how == "drop":
        del out[at : at + draw(st.integers(1, 8))]
    elif how == "insert":
        out[at:at] = draw(st.binary(min_size=1, max_size=8) | st.sampled_from(_INSERTS))
    elif how == "repeat":
        out[at:at] = out[at : at + draw(st.integers(1, 32))]
    elif how == "truncate":
        del out[at:]
    return bytes(out)


@st.composite
def gptalk_requests(
    draw: st.DrawFn, *, token: str = ZERO_TOKEN, mutated: bool | None = None
) -> bytes:
    """What one client connection sends a GPTalk server: one to four
    requests, pipelined, each valid or hostile; grammar-aware and byte-level
    mutations of them (``mutated=True``), none (``False``) or either
    (``None``); now and then foreign protocols or arbitrary bytes.

    ``token`` is the bearer and stream token the requests carry (default:
    :data:`ZERO_TOKEN`, which ``Service(entropy=bytes)`` issues).
    """
    pick = draw(st.integers(0, 19))
    if pick == 0:
        return draw(st.binary(max_size=300))
    if pick == 1:
        return draw(st.sampled_from(_FOREIGN)) + draw(st.binary(max_size=16))
    if pick < 8:
        # A chat, valid, some of its requests doubled, a hostile one somewhere.
        steps = [
            step for step in ("login", "text", "stream") for _ in range(draw(st.integers(1, 2)))
        ]
        requests = [_request(draw, token, step) for step in steps]
        if draw(st.booleans()):
            requests.insert(draw(st.integers(0, len(requests))), _request(draw, token))
    else:
        requests = [_request(draw, token) for _ in range(draw(st.integers(1, 4)))]
    data = b"".join(requests)
    if mutated is None:
        mutated = draw(st.integers(0, 2)) == 0
    if mutated:
        for _ in range(draw(st.integers(1, 3))):
            data = _mutate(draw, data)
    return data
