"""Hostile answers to the client, written once for the core tests (scripted
bytes into a ClientConnection) and the loopback tests (a scripted peer in
front of every client kind and the ``gptalk`` command).

Each case answers one request kind (``login``, ``text`` or ``stream``) with raw
bytes; the requests before it get well-formed answers.  ``error`` is the exact
type the client must raise.
"""

from __future__ import annotations

import json
import traceback
from collections.abc import Iterator
from typing import Any, NamedTuple

import gptalk_proto as g
from gptalk_proto.testing import Played, http_response, play_responses
from gptalk_transports import RetryPolicy

from .hostile_peer import Answer

NOW = 1_700_000_000.0
LOGIN_TOKEN = "L" * 8 + "0123456789abcdef" * 2
STREAM_TOKEN = "S" * 8 + "fedcba9876543210" * 2

#: Characters that must never reach a terminal raw from a server: ESC, CR,
#: NUL, the bidi override, and the C1 CSI (which some terminals take as ESC [).
RAW = ("\x1b", "\r", "\x00", "\u202e", "\x9b")
NASTY = "\x1b[31mred\x1b[0m\roverwritten\x00nul\u202eevil\u2028line"
#: Longest str(error) accepted: a few excerpts plus the sentence around them.
MAX_MESSAGE = 1000


#: No retry and no backoff: each hostile answer is met once (or, for token
#: refusals, once more after the fresh login the policy always makes).
NO_RETRY = RetryPolicy(retries=0, backoff=0.0)


class Case(NamedTuple):
    kind: str
    answer: Answer
    error: type[g.GPTalkError]


def close(status: int, body: bytes, **kwargs: Any) -> bytes:
    """A raw response that closes the connection after it."""
    headers = [("Connection", "close"), *kwargs.pop("headers", [])]
    return http_response(status, body, headers=headers, **kwargs)


def envelope(status: int = 200, **fields: Any) -> Answer:
    body = json.dumps({"code": 0, "msg": "ok", **fields}).encode()
    return lambda target, headers, request_body: close(status, body)


def login(**data: Any) -> Answer:
    return envelope(data={"token": LOGIN_TOKEN, "expires_at": NOW + 3600, **data})


def text(**data: Any) -> Answer:
    return envelope(data={"token": STREAM_TOKEN, **data})


def raw(data: bytes) -> Answer:
    return lambda target, headers, body: data


def _header(headers: tuple[tuple[str, str], ...], name: str) -> str:
    return next((v for n, v in headers if n.lower() == name), "")


def echo_bearer(target: str, headers: tuple[tuple[str, str], ...], body: bytes) -> bytes:
    token = _header(headers, "authorization").partition(" ")[2]
    msg = f"invalid token {token} (token {json.dumps(token)})"
    return close(200, json.dumps({"code": g.ErrorCode.AUTH_INVALID, "msg": msg}).encode())


def echo_fingerprint(target: str, headers: tuple[tuple[str, str], ...], body: bytes) -> bytes:
    fingerprint = json.loads(body)["fingerprint"]
    msg = f"bad fingerprint {fingerprint}"
    return close(200, json.dumps({"code": g.ErrorCode.BAD_REQUEST, "msg": msg}).encode())


def echo_target(target: str, headers: tuple[tuple[str, str], ...], body: bytes) -> bytes:
    # The stream token, percent-encoded in the target and plain in the msg.
    token = target.partition("token=")[2]
    msg = f"no stream at {target}: token {token} unknown"
    return close(404, json.dumps({"msg": msg}).encode(), headers=[("X-Echo", target)])


def echo_proxy_credentials(target: str, headers: tuple[tuple[str, str], ...], body: bytes) -> bytes:
    # An HTTP proxy that refuses, quoting the credentials it was given.
    credentials = _header(headers, "proxy-authorization")
    msg = f"proxy refused {credentials}"
    return close(407, json.dumps({"msg": msg}).encode())


BIG = 10**400
BAD_TOKENS: dict[str, object] = {
    "int": 7,
    "bool": True,
    "null": None,
    "empty": "",
    "space": "a b",
    "crlf": "tok\r\nx-injected: 1",
    "nul": "a\x00b",
    "non-ascii": "tök",
    "semicolon": "tok;x=1",
    "too-long": "t" * (g.MAX_TOKEN_LENGTH + 1),
    "list": ["tok"],
}
BAD_EXPIRIES: dict[str, object] = {
    "10**400": BIG,
    "nan": float("nan"),
    "inf": float("inf"),
    "-inf": float("-inf"),
    "negative": -1,
    "year-10000": g.MAX_EXPIRES_AT + 1,
    "1e308": 1e308,
    "str": "1700003600",
    "bool": True,
    "null": None,
    "object": {"at": 1},
}

CASES: dict[str, Case] = {}
for _name, _value in BAD_EXPIRIES.items():
    CASES[f"login-expires-{_name}"] = Case("login", login(expires_at=_value), g.RemoteProtocolError)
for _name, _value in BAD_TOKENS.items():
    CASES[f"login-token-{_name}"] = Case("login", login(token=_value), g.RemoteProtocolError)
    CASES[f"stream-token-{_name}"] = Case("text", text(token=_value), g.RemoteProtocolError)
CASES.update(
    {
        "login-deep-json": Case("login", raw(close(200, b"[" * 100_000)), g.RemoteProtocolError),
        "stream-deep-json": Case(
            "stream",
            raw(
                close(
                    200,
                    b'data: {"content": ' + b"[" * 100_000 + b"\n\n",
                    content_type="text/event-stream",
                )
            ),
            g.RemoteProtocolError,
        ),
        # Status codes HTTP does not define: the server's fault (exit 5, not 2).
        "status-600-login": Case("login", raw(close(600, b"{}")), g.RemoteProtocolError),
        "status-999-text": Case("text", raw(close(999, b"{}")), g.RemoteProtocolError),
        "status-600-stream": Case("stream", raw(close(600, b"")), g.RemoteProtocolError),
        # Server text: bounded and escaped wherever it is quoted.
        "msg-900kb": Case("login", envelope(code=50000, msg="x" * 900_000), g.ServiceError),
        "msg-nasty": Case("login", envelope(code=50000, msg=NASTY * 3), g.ServiceError),
        "msg-lone-surrogate": Case("text", envelope(code=50000, msg="a\udc80b"), g.ServiceError),
        "status-500-nasty": Case(
            "text", envelope(status=500, msg=NASTY + "y" * 900_000), g.HTTPStatusError
        ),
        "content-type-nasty": Case(
            "stream",
            raw(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/\x1b[31mhtml\xff\xfe\x9b2J"
                + b"z" * 30_000
                + b"\r\ncontent-length: 4\r\nconnection: close\r\n\r\nnope"
            ),
            g.RemoteProtocolError,
        ),
        "status-line-nasty": Case(
            "login",
            raw(b"HTTP/1.1 2\x1b[31m0 " + b"\x1b[2J\r" * 5000 + b"\r\n\r\n"),
            g.RemoteProtocolError,
        ),
        "event-nasty": Case(
            "stream",
            raw(
                close(
                    200,
                    ("data: " + NASTY * 10_000 + "\n\n").encode(),
                    content_type="text/event-stream",
                )
            ),
            g.RemoteProtocolError,
        ),
    }
)

#: Answers that echo a secret the client sent; ``error`` as above.
ECHOES: dict[str, Case] = {
    "bearer-in-msg": Case("text", echo_bearer, g.AuthInvalid),
    "fingerprint-in-msg": Case("login", echo_fingerprint, g.ServiceError),
    "stream-token-in-msg": Case("stream", echo_target, g.HTTPStatusError),
}


def chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    todo = [error]
    while todo:
        link = todo.pop()
        if id(link) not in seen:
            seen.add(id(link))
            yield link
            todo += [e for e in (link.__cause__, link.__context__) if e is not None]


def shown(error: BaseException) -> list[str]:
    """Everything a program may print of an error: str and repr along the
    chain, the attributes, and the formatted traceback."""
    texts = ["".join(traceback.format_exception(error))]
    for link in chain(error):
        texts += [str(link), repr(link)]
        texts += [repr(value) for value in vars(link).values() if isinstance(value, (str, int))]
    return texts


def play_core(case: Case) -> Played:
    """The case on the core: a ClientConnection fed scripted bytes."""
    chat = g.Chat("Hello", credentials=g.Credentials(), fingerprint="ab" * 16)
    conn = g.ClientConnection(chat, host="gptalk.test")
    before = {"login": [], "text": [login()], "stream": [login(), text()]}[case.kind]

    def script() -> Iterator[bytes]:
        for answer in [*before, case.answer]:
            request = chat.request
            assert request is not None
            yield answer(request.target, request.headers, request.body)

    return play_responses(conn, script(), now=NOW)
