"""The exception tree.

Everything this toolkit raises on purpose derives from :class:`GPTalkError`::

    GPTalkError
    ├── ProtocolError
    │   ├── LocalProtocolError        the caller misused the API
    │   └── RemoteProtocolError       the peer broke the protocol
    │       ├── InvalidHTTP           the peer's bytes are not HTTP/1.1 (h11 said so)
    │       ├── SSESizeError          an SSE line or event over its cap
    │       │   ├── SSELineTooLong
    │       │   └── SSEEventTooLarge
    │       └── StreamInterrupted     the reply stream ended before [DONE]
    ├── ServiceError(code, msg)       the service refused (error envelope)
    │   ├── QuotaExhausted
    │   ├── AuthExpired
    │   ├── AuthInvalid
    │   └── HTTPStatusError(status)   a 4xx/5xx answer
    └── ContentRewritten              the service rewrote text already yielded

The transports add ``TransportError`` (connect, proxy, TLS, timeouts) as a
sibling tree under :class:`GPTalkError`.

Messages never carry a bearer token, stream token or fingerprint: they name
what was expected and what came, and quote the peer's text (an envelope's
``msg``, a header, event data) only through :func:`excerpt`, bounded and
escaped, so no server text reaches a terminal raw.  The chat machine takes its
known secrets out of every error it raises (``gptalk_proto._scrub``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from .sse._event import SSEEvent

__all__ = [
    "AuthExpired",
    "AuthInvalid",
    "ContentRewritten",
    "GPTalkError",
    "HTTPStatusError",
    "InvalidHTTP",
    "LocalProtocolError",
    "ProtocolError",
    "QuotaExhausted",
    "RemoteProtocolError",
    "SSEEventTooLarge",
    "SSELineTooLong",
    "SSESizeError",
    "ServiceError",
    "StreamInterrupted",
    "escaped",
    "excerpt",
]

#: How much of a peer's bytes an error message may quote, in characters
#: before escaping: enough to recognise a message, too little to flood a
#: terminal or a log with whatever the peer sent (a 900 KB ``msg``).
EXCERPT_LIMIT = 120


def excerpt(text: str | bytes, limit: int = EXCERPT_LIMIT) -> str:
    """A bounded, printable quotation of peer data for an error message.

    ``repr`` escapes every character that is not printable -- ESC (ANSI
    sequences), CR, NUL, the bidi overrides (U+202E is format, not printable)
    -- and bytes that are not UTF-8 come out as U+FFFD, so the quotation is
    one line of visible characters that cannot steer a terminal.
    """
    if isinstance(text, (bytes, bytearray, memoryview)):
        text = bytes(text).decode("utf-8", "replace")
    if len(text) <= limit:
        return repr(text)
    return repr(text[:limit]) + f"... ({len(text)} characters)"


#: How many characters of a line of an error message :func:`escaped` keeps:
#: a line built around peer text (a 2 MB request path, a JSON key of a
#: megabyte) stays a line a terminal shows whole.
LINE_LIMIT = 500


def escaped(text: str, limit: int = LINE_LIMIT) -> str:
    """``text`` unquoted but with every character that is not printable
    escaped as ``repr`` would (ESC, CR, LF, U+202E), cut to ``limit``
    characters once escaped: one visible line for a message that is partly
    peer text."""
    shown = text[:limit]
    if not shown.isprintable():
        shown = "".join(c if c.isprintable() else ascii(c)[1:-1] for c in shown)
    if len(shown) > limit or len(text) > limit:
        return shown[:limit] + f"... ({len(text)} characters)"
    return shown


class GPTalkError(Exception):
    """Base class of every error this toolkit raises on purpose."""


class ProtocolError(GPTalkError):
    """Someone broke the rules: see the two subclasses for who."""


class LocalProtocolError(ProtocolError):
    """The caller misused the API: a call out of order, or a value that
    cannot go on the wire (a CR or LF in a header or an SSE field, ...).

    Nothing was sent when this is raised by a ``send``.  A machine that raised
    it from a state transition is in its ``ERROR`` state for good.
    """


class RemoteProtocolError(ProtocolError):
    """The peer sent something the protocol does not allow.

    The message names what was expected and quotes a bounded excerpt of what
    came.
    """


class InvalidHTTP(RemoteProtocolError):
    """The peer's bytes are not valid HTTP/1.1.

    h11's own ``RemoteProtocolError`` is re-typed as this in one place
    (``gptalk_proto._http11``), so no other module catches h11's errors.
    ``status_hint`` is the 4xx a server answers it with (h11's hint, or 413
    for a body over its cap).
    """

    def __init__(self, message: str, *, status_hint: int = 400) -> None:
        super().__init__(message)
        self.status_hint = status_hint


class SSESizeError(RemoteProtocolError):
    """An SSE line or event went over the parser's cap.

    ``events`` holds the events that the failing ``feed()`` call had already
    completed before it hit the cap, so nothing parsed is lost.
    """

    def __init__(self, message: str, *, limit: int, events: Sequence[SSEEvent] = ()) -> None:
        super().__init__(message)
        self.limit = limit
        self.events: list[SSEEvent] = list(events)


class SSELineTooLong(SSESizeError):
    """A line (in bytes, without its line end) is longer than ``max_line_size``."""


class SSEEventTooLarge(SSESizeError):
    """An event's data buffer grew past ``max_event_size`` characters."""


class StreamInterrupted(RemoteProtocolError):
    """The reply stream ended (or broke) before its ``[DONE]`` marker.

    ``text`` is the whole reply received so far, so a caller can keep it.
    """

    def __init__(self, message: str, *, text: str = "") -> None:
        super().__init__(message)
        self.text = text


class ServiceError(GPTalkError):
    """The service answered, and the answer was a refusal.

    GPTalk answered most errors with HTTP 200 and an envelope whose ``data`` is
    missing or null; ``code`` and ``msg`` are that envelope's fields.
    """

    def __init__(self, code: int | None, msg: str) -> None:
        # ``msg`` is the service's text: quoted bounded and escaped.
        super().__init__(
            f"service error {code}: {excerpt(msg)}"
            if code is not None
            else f"service error: {excerpt(msg)}"
        )
        self.code = code
        self.msg = msg


class QuotaExhausted(ServiceError):
    """The login token has no uses left (or the service's quota ran out).

    The cure is a new login.
    """


class AuthExpired(ServiceError):
    """The login token is past its expiry.  The cure is a new login."""


class AuthInvalid(ServiceError):
    """The service does not know the token (or rejected a fresh one)."""


class HTTPStatusError(ServiceError):
    """The service answered with a 4xx or 5xx status.

    ``retry_after`` is the answer's ``Retry-After`` field value as sent (on
    429 and 503 only, RFC 9110 section 10.2.3 and RFC 6585 section 4), or
    None; the clients honour it between retries.
    """

    def __init__(
        self, status: int, url: str, msg: str = "", *, retry_after: str | None = None
    ) -> None:
        text = f"HTTP {status} from {url}" + (f": {excerpt(msg)}" if msg else "")
        GPTalkError.__init__(self, text)
        self.code = status
        self.msg = msg
        self.status = status
        self.url = url
        self.retry_after = retry_after


class ContentRewritten(GPTalkError):
    """The service's new cumulative text does not extend the text already
    delivered as deltas (it rewrote earlier text).

    Raised by delta iterators whose policy is to refuse rewrites; ``text`` is
    the new whole text and ``previous`` the text it replaced.
    """

    def __init__(self, text: str, previous: str) -> None:
        super().__init__(
            f"the service rewrote earlier text: {len(previous)} characters delivered, "
            f"the new text ({len(text)} characters) does not extend them"
        )
        self.text = text
        self.previous = previous
