"""The GPTalk service's side of the protocol, as pure decisions.

:class:`Service` holds what the live service held (login tokens with their
use counts and expiry, pending stream tokens) and answers one request at a
time with a sequence of :data:`Step` values: a response head, body chunks,
pauses, an abrupt close.  It does no IO and reads no clock: the time comes in
with each request and the entropy for tokens from an injected callable.
:class:`~gptalk_proto.server.ServerConnection` frames the steps as HTTP/1.1.
"""

from __future__ import annotations

import json
import math
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from http import HTTPStatus
from typing import Any, NamedTuple
from urllib.parse import parse_qs, urlsplit

from .._errors import LocalProtocolError
from .._wire import DONE_MARKER, LOGIN_PATH, STREAM_PATH, TEXT_PATH, ErrorCode
from ..sse._encoder import encode_comment, encode_event
from ._faults import Fault, parse_faults
from ._json_depth import MAX_JSON_DEPTH, json_too_deep
from ._replies import ReplyGenerator, default_reply

__all__ = [
    "DEFAULT_MAX_PENDING_BYTES",
    "DEFAULT_MAX_PENDING_STREAMS",
    "DEFAULT_STREAM_TTL",
    "Abort",
    "Chunk",
    "Drip",
    "End",
    "Head",
    "Pause",
    "Service",
    "Step",
]

#: Login tokens the service remembers at most (oldest forgotten first), so a
#: flood of logins cannot grow its memory without bound.
MAX_TOKENS = 100_000

#: Bytes of prompts (and model names, UTF-8) held, in all, for text requests
#: whose stream has not been fetched: each waits in memory until its stream
#: request or its expiry, so without a cap a client that never fetches grows
#: the server without end.  64 prompts of the largest request body (1 MiB);
#: past it a text request gets 503 (see :class:`Service`).
DEFAULT_MAX_PENDING_BYTES = 64 * 1024 * 1024

#: Pending streams held at once, small prompts or large: each costs some 300
#: bytes besides its prompt (token, entry, table slot).
DEFAULT_MAX_PENDING_STREAMS = 10_000

#: Seconds a stream token waits for its stream request; then it is forgotten
#: and its prompt freed.  A client asks for its stream right after the text
#: request, so a minute is ample.
DEFAULT_STREAM_TTL = 60.0

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
_STREAM_HEADERS = (
    ("content-type", "text/event-stream; charset=utf-8"),
    ("cache-control", "no-cache"),
    ("x-accel-buffering", "no"),
)


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


class _Pending(NamedTuple):
    """A text request's prompt, held until its stream is fetched."""

    prompt: bytes  # UTF-8 with surrogates passed: the held bytes are the bytes counted
    model: bytes
    expires_at: float

    @property
    def size(self) -> int:
        return len(self.prompt) + len(self.model)


def _json_body(
    status: int, obj: dict[str, Any], headers: tuple[tuple[str, str], ...] = ()
) -> Iterator[Step]:
    body = json.dumps(obj).encode("ascii")
    yield Head(status, (("content-type", "application/json"), *headers), len(body))
    yield Chunk(body)
    yield End()


def _http_error(status: int, msg: str, headers: tuple[tuple[str, str], ...] = ()) -> Iterator[Step]:
    return _json_body(status, {"code": status, "msg": msg}, headers)


def status_message(status: int) -> str:
    """The message of a JSON error body for ``status``: its reason phrase in
    lower case (``"service unavailable"``, ``"not found"``)."""
    try:
        return HTTPStatus(status).phrase.lower()
    except ValueError:
        return f"error {status}"


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
        max_pending_bytes: cap on the prompt bytes held, in all, for text
            requests whose stream was not fetched yet.
        max_pending_streams: cap on how many such requests are held.
        stream_ttl: seconds a stream token waits for its stream request.

    A text request the pending caps cannot hold gets HTTP 503 with a
    ``Retry-After`` of the seconds until the oldest pending stream expires:
    the server is full for a while, which is what 503 says (RFC 9110 section
    15.6.4), not a fault of the token or of the request, and clients already
    retry a 503.  It uses up none of the token's uses.  A prompt larger than
    the whole cap can never be held: 413.
    """

    def __init__(
        self,
        *,
        entropy: Callable[[int], bytes],
        reply: ReplyGenerator = default_reply,
        faults: Iterable[str | Fault] = (),
        token_ttl: float = 3600.0,
        max_uses: int = 5,
        max_pending_bytes: int = DEFAULT_MAX_PENDING_BYTES,
        max_pending_streams: int = DEFAULT_MAX_PENDING_STREAMS,
        stream_ttl: float = DEFAULT_STREAM_TTL,
    ) -> None:
        self._entropy = entropy
        self.reply = reply
        self.faults = parse_faults(faults)
        self.token_ttl = token_ttl
        self.max_uses = max_uses
        # token -> [expires_at, uses]
        self._logins: OrderedDict[str, list[float]] = OrderedDict()
        if min(max_pending_bytes, max_pending_streams) < 0:
            raise LocalProtocolError("the pending caps cannot be negative")
        if not (math.isfinite(stream_ttl) and stream_ttl > 0):
            raise LocalProtocolError(f"stream_ttl must be a positive number, not {stream_ttl}")
        self.max_pending_bytes = max_pending_bytes
        self.max_pending_streams = max_pending_streams
        self.stream_ttl = stream_ttl
        # stream token -> pending prompt, oldest first
        self._streams: OrderedDict[str, _Pending] = OrderedDict()
        self._pending_bytes = 0
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

    @property
    def pending_bytes(self) -> int:
        """Prompt bytes held now for streams not fetched yet (at most
        ``max_pending_bytes``)."""
        return self._pending_bytes

    @property
    def pending_streams(self) -> int:
        """Streams not fetched yet (at most ``max_pending_streams``)."""
        return len(self._streams)

    def expire(self, now: float) -> None:
        """Forget the stream tokens expired at ``now`` (every request does this)."""
        streams = self._streams
        while streams:
            token, oldest = next(iter(streams.items()))
            if oldest.expires_at > now:
                # Entries are in arrival order, so they expire in order; with a
                # clock that stepped back, a later one may expire first: it is
                # refused when asked for, and freed once those before it go.
                return
            self._release(token)

    def _release(self, token: str) -> _Pending | None:
        pending = self._streams.pop(token, None)
        if pending is not None:
            self._pending_bytes -= pending.size
        return pending

    def _hold(self, token: str, pending: _Pending) -> None:
        self._release(token)  # the same token twice: count it once
        self._streams[token] = pending
        self._pending_bytes += pending.size

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
        """Answer one complete request; return the steps of the response.

        ``HEAD`` gets the steps ``GET`` would (the framing layer sends the
        head alone) without any effect: no token is used up and no fault is
        counted or committed.
        """
        self.expire(now)
        try:
            url = urlsplit(target)
        except ValueError:
            # "//[x" or "http://[oops/": an IPv6 host never closed.
            return _http_error(400, "bad request target")
        endpoint = _ENDPOINTS.get(url.path)
        if endpoint is None:
            return _http_error(404, f"no such path: {url.path[:100]}")
        allowed = _METHODS[endpoint]
        if method == "HEAD" and allowed == "GET":
            # RFC 9110 section 9.3.2: "The HEAD method is identical to GET
            # except that the server MUST NOT send content in the response",
            # and the server SHOULD send the header fields GET would.  So the
            # stream endpoint answers the head of what GET would answer now,
            # found without using the token up.  Elsewhere GET itself gets 405,
            # and so does HEAD, below.
            return self._stream_head(url.query, now)
        if method != allowed:
            # RFC 9110 section 15.5.6: "The origin server MUST generate an
            # Allow header field in a 405 response".
            allow = "GET, HEAD" if allowed == "GET" else allowed
            return _http_error(405, f"{endpoint} takes {allowed}", (("allow", allow),))
        if endpoint != "stream" and json_too_deep(body):
            return _http_error(400, f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
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
            yield from _http_error(status, status_message(status))
            return
        if "envelope" in kinds:
            yield from _envelope_error(*_ENVELOPES[str(kinds["envelope"])])
            return
        if endpoint == "login":
            yield from self._login(body, now)
        elif endpoint == "text":
            yield from self._text(headers, body, now)
        else:
            yield from self._stream(query, kinds, now)

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
        # Lone surrogates (from "\ud800" in the JSON) pass through the bytes
        # held, and come back as they came.
        pending = _Pending(
            request["content"].encode("utf-8", "surrogatepass"),
            request.get("model", "").encode("utf-8", "surrogatepass"),
            now + self.stream_ttl,
        )
        if pending.size > self.max_pending_bytes:
            return _http_error(
                413, f"prompt over the {self.max_pending_bytes} bytes this server holds"
            )
        if (
            self._pending_bytes + pending.size > self.max_pending_bytes
            or len(self._streams) >= self.max_pending_streams
        ):
            return self._full(now)
        entry[1] += 1
        stream_token = self._token()
        self._hold(stream_token, pending)
        return _json_body(200, {"code": 0, "msg": "ok", "data": {"token": stream_token}})

    def _full(self, now: float) -> Iterator[Step]:
        # The oldest pending stream frees its room by this time at the latest.
        oldest = next(iter(self._streams.values()), None)
        wait = self.stream_ttl if oldest is None else oldest.expires_at - now
        retry_after = str(max(1, min(math.ceil(wait), math.ceil(self.stream_ttl))))
        return _http_error(
            503,
            "too many prompts waiting for their streams; retry later",
            (("retry-after", retry_after),),
        )

    def _pending(self, query: str, now: float) -> str | None:
        """The stream token ``query`` names, if it is pending and not expired."""
        try:
            tokens = parse_qs(query).get("token", [])
        except ValueError:
            return None
        if len(tokens) != 1:
            return None
        pending = self._streams.get(tokens[0])
        if pending is None:
            return None
        if pending.expires_at <= now:
            # Out of arrival order (the clock stepped back): freed when seen.
            self._release(tokens[0])
            return None
        return tokens[0]

    def _stream_head(self, query: str, now: float) -> Iterator[Step]:
        if self._pending(query, now) is None:
            return _envelope_error(*_ENVELOPES["invalid"])
        return iter((Head(200, _STREAM_HEADERS, None), End()))

    def _stream(self, query: str, kinds: dict[str, Any], now: float) -> Iterator[Step]:
        token = self._pending(query, now)
        pending = None if token is None else self._release(token)
        if pending is None:
            yield from _envelope_error(*_ENVELOPES["invalid"])
            return
        prompt = pending.prompt.decode("utf-8", "surrogatepass")
        model = pending.model.decode("utf-8", "surrogatepass")
        del pending  # the bytes are freed once the reply is made
        pieces = [_clean(piece) for piece in self.reply(prompt, model)]
        yield from stream_steps(pieces, kinds)


def _load(body: bytes) -> dict[str, Any] | None:
    # UTF-8 only (RFC 8259 section 8.1), which json_too_deep relies on: the
    # body's depth was checked before this, bytewise.
    try:
        value = json.loads(body.decode("utf-8"))
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
    yield Head(200, _STREAM_HEADERS, None)
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
