"""The GPTalk service's side of the protocol, as pure decisions.

:class:`Service` holds what the live service held (login tokens with their
use counts and expiry, pending stream tokens) and answers one request at a
time with a sequence of :data:`Step` values: a response head, body chunks,
pauses, an abrupt close.  It does no IO and reads no clock: the time comes in
with each request and the entropy for tokens from an injected callable.
:class:`~gptalk_proto.ServerConnection` frames the steps as HTTP/1.1.
"""

from __future__ import annotations

import json
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, NamedTuple
from urllib.parse import parse_qs, urlsplit

from ._errors import LocalProtocolError
from ._faults import Fault, parse_faults
from ._replies import ReplyGenerator, default_reply
from ._sse_encoder import encode_comment, encode_event
from ._wire import DONE_MARKER, LOGIN_PATH, STREAM_PATH, TEXT_PATH, ErrorCode

__all__ = [
    "Abort",
    "Chunk",
    "Drip",
    "End",
    "Head",
    "Pause",
    "Service",
    "Step",
]

#: Login and stream tokens the service remembers at most (oldest forgotten
#: first), so a flood of logins cannot grow its memory without bound.
MAX_TOKENS = 100_000

_ENDPOINTS = {LOGIN_PATH: "login", TEXT_PATH: "text", STREAM_PATH: "stream"}
_METHODS = {"login": "POST", "text": "POST", "stream": "GET"}
_ENVELOPES = {
    "quota": (ErrorCode.QUOTA_EXHAUSTED, "quota exhausted: this token has no uses left"),
    "expired": (ErrorCode.AUTH_EXPIRED, "token expired, please log in again"),
    "invalid": (ErrorCode.AUTH_INVALID, "invalid token"),
    "bad-request": (ErrorCode.BAD_REQUEST, "bad request"),
    "internal": (ErrorCode.INTERNAL, "internal error, try again later"),
}
_REWRITE_PREFIX = "(edited) "


class Head(NamedTuple):
    """Start the response.  ``length`` None means a streamed (chunked) body."""

    status: int
    headers: tuple[tuple[str, str], ...]
    length: int | None


class Chunk(NamedTuple):
    """Body bytes, sent as one write (one HTTP chunk when streaming)."""

    data: bytes


class End(NamedTuple):
    """The body is complete."""


class Pause(NamedTuple):
    """Wait this many seconds before the next step."""

    seconds: float


class Abort(NamedTuple):
    """Close the connection now, mid-response or before one."""


class Drip(NamedTuple):
    """From here on, send every byte on its own, ``seconds`` apart."""

    seconds: float


Step = Head | Chunk | End | Pause | Abort | Drip
"""One thing the service wants done for a response."""


def _json_body(status: int, obj: dict[str, Any]) -> Iterator[Step]:
    body = json.dumps(obj).encode("ascii")
    yield Head(status, (("content-type", "application/json"),), len(body))
    yield Chunk(body)
    yield End()


def _envelope_error(code: int, msg: str) -> Iterator[Step]:
    # GPTalk's errors: HTTP 200 and an envelope with no "data".
    return _json_body(200, {"code": int(code), "msg": msg})


def _clean(text: str) -> str:
    # A prompt decoded from JSON may hold lone surrogates ("\ud800"); they
    # cannot be encoded as UTF-8, so the reply gets U+FFFD instead.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")
    return text


class Service:
    """The reference GPTalk service's state and decisions (no IO).

    Args:
        entropy: ``n -> n random bytes`` for tokens (``os.urandom`` in the
            server; a seeded generator in tests).
        reply: the reply generator (default: :func:`default_reply`).
        faults: fault specs or :class:`Fault` objects (see ``_faults``).
        token_ttl: seconds a login token lives.
        max_uses: text requests a login token serves.
    """

    def __init__(
        self,
        *,
        entropy: Callable[[int], bytes],
        reply: ReplyGenerator = default_reply,
        faults: Iterable[str | Fault] = (),
        token_ttl: float = 3600.0,
        max_uses: int = 5,
    ) -> None:
        self._entropy = entropy
        self.reply = reply
        self.faults = parse_faults(faults)
        self.token_ttl = token_ttl
        self.max_uses = max_uses
        # token -> [expires_at, uses]
        self._logins: OrderedDict[str, list[float]] = OrderedDict()
        # stream token -> (prompt, model)
        self._streams: OrderedDict[str, tuple[str, str]] = OrderedDict()
        #: Requests seen per endpoint ("login", "text", "stream", "any").
        self.counts: Counter[str] = Counter()

    def _token(self) -> str:
        raw = self._entropy(16)
        if len(raw) != 16:
            raise LocalProtocolError("entropy(16) must return 16 bytes")
        return raw.hex()

    def _remember(self, table: OrderedDict[str, Any], key: str, value: Any) -> None:
        table[key] = value
        while len(table) > MAX_TOKENS:
            table.popitem(last=False)

    # -- requests -----------------------------------------------------------------

    def handle(
        self,
        method: str,
        target: str,
        headers: Sequence[tuple[str, str]],
        body: bytes,
        *,
        now: float,
    ) -> Iterator[Step]:
        """Answer one complete request; return the steps of the response."""
        url = urlsplit(target)
        endpoint = _ENDPOINTS.get(url.path)
        if endpoint is None:
            return _json_body(404, {"code": 404, "msg": f"no such path: {url.path[:100]}"})
        if method != _METHODS[endpoint]:
            return _json_body(405, {"code": 405, "msg": f"{endpoint} takes {_METHODS[endpoint]}"})
        self.counts[endpoint] += 1
        self.counts["any"] += 1
        active = [
            fault
            for fault in self.faults
            if fault.applies(endpoint, self.counts["any" if fault.endpoint == "any" else endpoint])
        ]
        return self._answer(endpoint, url.query, headers, body, now=now, faults=active)

    def _answer(
        self,
        endpoint: str,
        query: str,
        headers: Sequence[tuple[str, str]],
        body: bytes,
        *,
        now: float,
        faults: list[Fault],
    ) -> Iterator[Step]:
        kinds = {fault.kind: fault.value for fault in faults}
        if "stall" in kinds:
            yield Pause(float(kinds["stall"]))  # type: ignore[arg-type]
        if "close" in kinds:
            yield Abort()
            return
        if "status" in kinds:
            status = int(kinds["status"])  # type: ignore[arg-type]
            yield from _json_body(status, {"code": status, "msg": "service unavailable"})
            return
        if "envelope" in kinds:
            yield from _envelope_error(*_ENVELOPES[str(kinds["envelope"])])
            return
        if endpoint == "login":
            yield from self._login(body, now)
        elif endpoint == "text":
            yield from self._text(headers, body, now)
        else:
            yield from self._stream(query, kinds)

    def _login(self, body: bytes, now: float) -> Iterator[Step]:
        request = _load(body)
        fingerprint = request.get("fingerprint") if request else None
        if (
            not isinstance(fingerprint, str)
            or len(fingerprint) != 32
            or any(c not in "0123456789abcdef" for c in fingerprint)
            or request.get("platform") != "fingerprint"  # type: ignore[union-attr]
        ):
            return _envelope_error(
                ErrorCode.BAD_REQUEST, "bad request: expected a 32-hex fingerprint"
            )
        token = self._token()
        expires_at = int(now + self.token_ttl)
        self._remember(self._logins, token, [float(expires_at), 0.0])
        return _json_body(
            200, {"code": 0, "msg": "ok", "data": {"token": token, "expires_at": expires_at}}
        )

    def _text(self, headers: Sequence[tuple[str, str]], body: bytes, now: float) -> Iterator[Step]:
        auth = next((value for name, value in headers if name == "authorization"), "")
        token = auth[7:] if auth[:7].lower() == "bearer " else ""
        entry = self._logins.get(token)
        if entry is None:
            return _envelope_error(*_ENVELOPES["invalid"])
        if now >= entry[0]:
            return _envelope_error(*_ENVELOPES["expired"])
        if entry[1] >= self.max_uses:
            return _envelope_error(*_ENVELOPES["quota"])
        request = _load(body)
        if (
            request is None
            or not isinstance(request.get("content"), str)
            or not isinstance(request.get("model", ""), str)
            or request.get("accept") != "stream"
        ):
            return _envelope_error(
                ErrorCode.BAD_REQUEST, "bad request: expected content and accept"
            )
        entry[1] += 1
        stream_token = self._token()
        self._remember(self._streams, stream_token, (request["content"], request.get("model", "")))
        return _json_body(200, {"code": 0, "msg": "ok", "data": {"token": stream_token}})

    def _stream(self, query: str, kinds: dict[str, Any]) -> Iterator[Step]:
        tokens = parse_qs(query).get("token", [])
        pending = self._streams.pop(tokens[0], None) if len(tokens) == 1 else None
        if pending is None:
            yield from _envelope_error(*_ENVELOPES["invalid"])
            return
        prompt, model = pending
        pieces = [_clean(piece) for piece in self.reply(prompt, model)]
        yield from stream_steps(pieces, kinds)


def _load(body: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    return value if isinstance(value, dict) else None


def stream_steps(pieces: Sequence[str], kinds: dict[str, Any]) -> Iterator[Step]:
    """The steps of an event stream of ``pieces``, with stream faults applied.

    ``kinds`` maps fault kinds to their values (``{"cut": 3, "newline": "\\r\\n"}``).
    """
    newline: str = kinds.get("newline", "\n")
    keepalive: int | None = kinds.get("keepalive")
    delay: float = kinds.get("delay", 0.0)
    cut: int | None = kinds.get("cut")
    headers = (
        ("content-type", "text/event-stream; charset=utf-8"),
        ("cache-control", "no-cache"),
        ("x-accel-buffering", "no"),
    )
    yield Head(200, headers, None)
    if "drip" in kinds:
        # Never ends: comment bytes, one at a time (the driver spaces them).
        yield Drip(float(kinds["drip"]))
        comment = encode_comment(" drip", newline=newline)
        while True:
            yield Chunk(comment)
    coalesced: list[bytes] | None = [] if "coalesce" in kinds else None
    # The content so far, JSON-escaped: escaping is per character, so the
    # escaped whole is the concatenation of the escaped pieces (linear work).
    escaped = ""
    rewrite_from = kinds.get("rewrite")
    rewrite_prefix = json.dumps(_REWRITE_PREFIX, ensure_ascii=False)[1:-1]
    for index, piece in enumerate(pieces, 1):
        escaped += json.dumps(piece, ensure_ascii=False)[1:-1]
        content = escaped
        if rewrite_from is not None and index >= rewrite_from:
            content = rewrite_prefix + escaped
        if kinds.get("malformed") == index:
            data = '{"content": "' + content
        elif kinds.get("nocontent") == index:
            data = '{"text": "' + content + '"}'
        else:
            data = '{"content": "' + content + '"}'
        event = encode_event(data, newline=newline)
        if cut is not None and index > cut:
            if coalesced:
                yield Chunk(b"".join(coalesced))
            yield Chunk(event[: len(event) // 2])
            yield Abort()
            return
        if keepalive is not None and (index - 1) % keepalive == 0:
            comment = encode_comment(" keep-alive", newline=newline)
            if coalesced is None:
                yield Chunk(comment)
            else:
                coalesced.append(comment)
        if coalesced is None:
            if delay and index > 1:
                yield Pause(delay)
            yield Chunk(event)
        else:
            coalesced.append(event)
    done = encode_event(DONE_MARKER, newline=newline)
    if coalesced is None:
        yield Chunk(done)
    else:
        coalesced.append(done)
        yield Chunk(b"".join(coalesced))
    yield End()
