"""What goes on the wire: paths, headers, request bodies and response envelopes.

Both roles use this module, so the client and the reference server can never
disagree about a field name.  Everything here is pure: times come in as
arguments.
"""

from __future__ import annotations

import functools
import json
import json.encoder
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from enum import IntEnum
from typing import Any
from urllib.parse import quote

from ._errors import (
    AuthExpired,
    AuthInvalid,
    HTTPStatusError,
    LocalProtocolError,
    QuotaExhausted,
    RemoteProtocolError,
    ServiceError,
    excerpt,
)
from ._events import Request
from ._scrub import PLACEHOLDER
from ._util import check_header_value

__all__ = [
    "APP_ID",
    "DEFAULT_MODEL",
    "DEFAULT_ORIGIN",
    "DEFAULT_USER_AGENT",
    "DONE_MARKER",
    "LOGIN_PATH",
    "MAX_EXPIRES_AT",
    "MAX_TOKEN_LENGTH",
    "STREAM_PATH",
    "TEXT_PATH",
    "ErrorCode",
    "check_fingerprint",
    "check_login_data",
    "check_stream_data",
    "format_prompt",
    "login_request",
    "raise_for_envelope",
    "stream_request",
    "text_request",
    "text_request_fields",
]

#: The login endpoint: a fingerprint in, a token out (``POST``).
LOGIN_PATH = "/api/chatgpt/user/login"
#: The text endpoint: a prompt in, a stream token out (``POST``).
TEXT_PATH = "/api/chatgpt/chatapi/text"
#: The stream endpoint: a stream token in, the ``text/event-stream`` reply out (``GET``).
STREAM_PATH = "/api/chatgpt/chatapi/stream"

#: The end-of-stream marker: ``data: [DONE]``.
DONE_MARKER = "[DONE]"

#: Where the live service was (it is gone): the ``Origin`` the web client sent.
DEFAULT_ORIGIN = "https://gptalk.net"
#: The model a chat asks for unless told otherwise.
DEFAULT_MODEL = "gpt-3.5-turbo"
#: The ``User-Agent`` a chat sends unless told otherwise: the web client's browser.
DEFAULT_USER_AGENT = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/115.0.0.0 Safari/537.36"
)
#: The ``x-auth-appid`` header the web client sent.
APP_ID = "2229"


class ErrorCode(IntEnum):
    """Envelope ``code`` values the reference server uses.

    The live service's codes were never documented; the client classifies an
    envelope by these codes first and by its ``msg`` second (see
    :func:`raise_for_envelope`), so it also copes with servers that use other
    numbers.
    """

    OK = 0
    BAD_REQUEST = 40000
    AUTH_INVALID = 40101
    AUTH_EXPIRED = 40102
    QUOTA_EXHAUSTED = 42901
    INTERNAL = 50000


def check_fingerprint(fingerprint: str) -> str:
    """A login fingerprint is 32 lowercase hex characters."""
    # (32 characters none of which is left once hex digits are stripped: the
    # regex's answer, for a tenth of its cost, on every chat.)
    if (
        not isinstance(fingerprint, str)
        or len(fingerprint) != 32
        or fingerprint.strip("0123456789abcdef")
    ):
        raise LocalProtocolError("a fingerprint must be 32 lowercase hex characters")
    return fingerprint


def format_prompt(messages: str | Sequence[Mapping[str, str]]) -> str:
    """Turn chat messages into the one prompt string GPTalk takes.

    As the original client did: one message is sent as its content; several
    become one ``Role: content`` line each, then a final ``Assistant:`` line.
    A plain string is taken as the prompt itself.
    """
    if isinstance(messages, str):
        return messages
    if not messages:
        raise LocalProtocolError("a chat needs at least one message")
    for message in messages:
        if not isinstance(message, Mapping) or not isinstance(message.get("content"), str):
            raise LocalProtocolError("each message must be a mapping with a str 'content'")
    if len(messages) == 1:
        return messages[0]["content"]
    lines = [f"{str(m.get('role', 'user')).capitalize()}: {m['content']}" for m in messages]
    return "\n".join(lines) + "\nAssistant:"


#: (user agent, origin) pairs whose fixed headers are kept built, at most: a
#: client sends the same pair in every request, and these headers were
#: listed, extended and made a tuple again for each.
MAX_HEADER_SETTINGS = 16


@functools.lru_cache(maxsize=MAX_HEADER_SETTINGS)
def _fixed_headers(user_agent: str, origin: str, stream: bool) -> tuple[tuple[str, str], ...]:
    # The headers the original web client sent on every request, up to its
    # timestamp; a stream request (a GET: no body) accepts an event stream
    # and names no content type.
    rest = (
        ("origin", origin),
        ("user-agent", user_agent),
        ("x-auth-appid", APP_ID),
        ("x-auth-openid", ""),
        ("x-auth-platform", ""),
    )
    if stream:
        return (("accept", "text/event-stream"), *rest)
    return (("accept", "*/*"), ("content-type", "application/json"), *rest)


#: A string as json.dumps writes it by default (ASCII escapes): what
#: ``JSONEncoder.encode`` runs for a str, without its Python layer.
_dumps = json.encoder.encode_basestring_ascii

#: Named tuples built with ``tuple.__new__``: the same tuple as the class's
#: call, without its generated ``__new__`` (a Python frame) per request/head.
_new = tuple.__new__

#: Settings kept in their JSON form, at most: a client sends the same model
#: and user agent in every chat's text request.
MAX_JSON_SETTINGS = 16


@functools.lru_cache(maxsize=MAX_JSON_SETTINGS)
def _json_setting(value: str) -> str:
    # A model or a user agent as json.dumps writes it (never a prompt: those
    # differ, and are the user's own words).
    return _dumps(value)


#: RFC 3986 section 2.3's unreserved characters, which ``quote`` never escapes.
_UNRESERVED = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"


def _json(obj: Mapping[str, Any]) -> bytes:
    # json.dumps' defaults, as aiohttp's json= sent them; ASCII-only output
    # also keeps every byte of the body printable.
    return json.dumps(obj).encode("ascii")


def login_request(
    fingerprint: str,
    *,
    now: float,
    user_agent: str = DEFAULT_USER_AGENT,
    origin: str = DEFAULT_ORIGIN,
    extra_headers: Iterable[tuple[str, str]] = (),
) -> Request:
    """``POST /api/chatgpt/user/login`` with the fingerprint."""
    body = _json({"fingerprint": check_fingerprint(fingerprint), "platform": "fingerprint"})
    headers = (
        *_fixed_headers(user_agent, origin, False),
        ("x-auth-timestamp", str(int(now))),
        *extra_headers,
    )
    return _new(Request, ("login", "POST", LOGIN_PATH, headers, body))


def text_request_fields(body: bytes) -> tuple[str, str] | None:
    """``(prompt, model)`` of a text request's body, as :func:`text_request`
    writes it (``model`` is ``""`` when absent); None if it is not one.

    Replay asks it which chat a recorded request was, so that what a text
    request's JSON means stays here, beside the code that writes it.
    """
    try:
        fields = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if not isinstance(fields, dict) or not isinstance(fields.get("content"), str):
        return None
    model = fields.get("model")
    return fields["content"], model if isinstance(model, str) else ""


def text_request(
    token: str,
    prompt: str,
    *,
    model: str,
    now: float,
    user_agent: str = DEFAULT_USER_AGENT,
    origin: str = DEFAULT_ORIGIN,
    extra_headers: Iterable[tuple[str, str]] = (),
) -> Request:
    """``POST /api/chatgpt/chatapi/text`` with the bearer token and the prompt."""
    check_header_value("token", token)
    # Exactly the original client's fields, in its order, byte for byte as
    # json.dumps writes the object (a test holds it to that): only the three
    # strings go through the encoder, which costs less than the whole dict.
    body = (
        f'{{"content": {_dumps(prompt)}, "accept": "stream", "from": 1, '
        f'"model": {_json_setting(model)}, "is_mobile": 0, '
        f'"user_agent": {_json_setting(user_agent)}, '
        '"is_open_ctx": 0, "prompt": "", "roid": 111, "temperature": 0, '
        f'"ctx_msg_count": 3, "created_at": {int(now)}}}'
    ).encode("ascii")
    headers = (
        *_fixed_headers(user_agent, origin, False),
        ("x-auth-timestamp", str(int(now))),
        *extra_headers,
        ("authorization", f"Bearer {token}"),
    )
    return _new(Request, ("text", "POST", TEXT_PATH, headers, body))


def stream_request(
    stream_token: str,
    *,
    now: float,
    user_agent: str = DEFAULT_USER_AGENT,
    origin: str = DEFAULT_ORIGIN,
    extra_headers: Iterable[tuple[str, str]] = (),
) -> Request:
    """``GET /api/chatgpt/chatapi/stream?token=S``."""
    # quote() leaves a token of unreserved characters as it is (it checks so
    # with this same strip, after encoding): asked only for the others.
    if stream_token.rstrip(_UNRESERVED):
        stream_token = quote(stream_token, safe="")
    target = f"{STREAM_PATH}?token={stream_token}"
    headers = (
        *_fixed_headers(user_agent, origin, True),
        ("x-auth-timestamp", str(int(now))),
        *extra_headers,
    )
    return _new(Request, ("stream", "GET", target, headers, b""))


# -- responses ----------------------------------------------------------------


def _describe(value: Any) -> str:
    # Name the shape of a value without quoting it: login and text responses
    # carry tokens, which must never reach an error message.
    if isinstance(value, dict):
        return f"a JSON object with keys {sorted(value)!r}"
    return f"a JSON {type(value).__name__}"


#: json.loads' own C scanner (what ``json.loads`` runs under its Python
#: layers; the stubs do not list it).
_scan_once: Callable[[str, int], tuple[Any, int]] = vars(json.JSONDecoder())["scan_once"]


def _loads(body: bytes) -> Any:
    """``json.loads(body)``: the same value, and an error where it raises one
    (a ``ValueError``, ``UnicodeDecodeError`` or ``RecursionError``).

    A body that starts with ``{`` and no NUL after it is UTF-8 to
    ``json.loads`` (its encoding sniffing looks for a BOM or NULs), so it is
    decoded and scanned here directly: ``json.loads``' Python layers (the
    sniffing, two whitespace matches, the decoder's wrapper) cost more than
    the scan of a login or text response.
    """
    if body[:1] != b"{" or body[1:2] == b"\x00":
        return json.loads(body)
    text = body.decode("utf-8", "surrogatepass")
    try:
        value, end = _scan_once(text, 0)
    except StopIteration:
        raise ValueError("not a JSON value") from None
    # After the value, JSON's whitespace only (RFC 8259: space, tab, LF, CR).
    if end != len(text) and text[end:].strip(" \t\n\r"):
        raise ValueError("extra data after the JSON value")
    return value


def load_json_object(body: bytes, what: str) -> dict[str, Any]:
    """Decode a JSON object, or raise RemoteProtocolError naming ``what``."""
    try:
        value = _loads(body)
    # RecursionError: JSON nested thousands deep (``[`` x 100,000) is a peer's
    # attack on the decoder's stack, not a bug of ours.
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise RemoteProtocolError(
            f"expected a JSON object in the {what}, got {len(body)} bytes that are not JSON"
        ) from None
    if not isinstance(value, dict):
        raise RemoteProtocolError(f"expected a JSON object in the {what}, got {_describe(value)}")
    return value


#: Envelope codes outside this range are not codes (the service's are five
#: digits); such a ``code`` is treated as absent rather than carried into a
#: message thousands of digits long.
_CODE_RANGE = range(-(2**31), 2**31)


def _classify(code: Any, msg: str) -> ServiceError:
    number = (
        code
        if isinstance(code, int) and not isinstance(code, bool) and code in _CODE_RANGE
        else None
    )
    lowered = msg.lower()
    if number == ErrorCode.QUOTA_EXHAUSTED or "quota" in lowered or "limit" in lowered:
        return QuotaExhausted(number, msg)
    if number == ErrorCode.AUTH_EXPIRED or "expire" in lowered:
        return AuthExpired(number, msg)
    if (
        number == ErrorCode.AUTH_INVALID
        or ("token" in lowered and ("invalid" in lowered or "unknown" in lowered))
        or "unauthori" in lowered
    ):
        return AuthInvalid(number, msg)
    return ServiceError(number, msg)


def raise_for_envelope(envelope: dict[str, Any], what: str) -> dict[str, Any]:
    """Return the envelope's ``data`` object, or raise the typed service error.

    GPTalk answered errors with HTTP 200 and an envelope whose ``data`` is
    missing or null; ``code`` and ``msg`` say why.  The original client met
    them as ``KeyError: 'data'``.
    """
    data = envelope.get("data")
    if data is None:
        msg = envelope.get("msg")
        code = envelope.get("code")
        if not isinstance(msg, str):
            number = _classify(code, "").code
            shown = repr(number) if number is not None or code is None else _describe(code)
            msg = f"the {what} has no data (code {shown})"
        raise _classify(code, msg)
    if not isinstance(data, dict):
        raise RemoteProtocolError(
            f"expected an object in the {what}'s 'data', got {_describe(data)}"
        )
    return data


def status_error(
    status: int, url: str, body: bytes, retry_after: str | None = None
) -> HTTPStatusError:
    """The error for a 4xx/5xx answer; the envelope's ``msg`` if it has one,
    and the answer's ``Retry-After`` value if it had one."""
    msg = ""
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        value = None
    if isinstance(value, dict) and isinstance(value.get("msg"), str):
        msg = value["msg"][:200]
    return HTTPStatusError(status, url, msg, retry_after=retry_after)


# -- values the server hands the client ---------------------------------------

#: Longest login or stream token accepted, in characters.  The reference
#: server's are 32; a token goes back into every text request's header (or
#: the stream URL), so a "token" of a megabyte is refused, not echoed.
MAX_TOKEN_LENGTH = 4096

#: Latest ``expires_at`` accepted, in unix seconds: 9999-12-31T23:59:59Z, the
#: last second a ``datetime`` can show.  A larger number (``10**400`` does not
#: even fit a float) is not an expiry.
MAX_EXPIRES_AT = 253_402_300_799

# RFC 6750 section 2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~"
# / "+" / "/" ) *"=".  Every one of them may stand in an Authorization header,
# and quote(..., safe="") percent-encodes "+", "/" and "=" in the stream URL's
# query, so a b64token goes back into a header or a URL unchanged in meaning.
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")


def _check_token(value: object, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise RemoteProtocolError(
            f"expected a non-empty str 'token' in the {what}'s data, got {_describe(value)}"
        )
    if len(value) > MAX_TOKEN_LENGTH:
        raise RemoteProtocolError(
            f"expected a 'token' of at most {MAX_TOKEN_LENGTH} characters in the {what}'s "
            f"data, got {len(value)}"
        )
    # A replayed cassette hands back the redaction placeholder (``<t1>...``,
    # or ``***`` for a token too short to name) in place of the recorded
    # token; that is accepted too.
    if not (_B64TOKEN.fullmatch(value) or PLACEHOLDER.fullmatch(value) or value.strip("*") == ""):
        # Not quoted: it is a token, and the message must not carry it.
        raise RemoteProtocolError(
            f"the {what}'s token is not an RFC 6750 b64token (letters, digits, "
            "'-._~+/', then '=' padding): it cannot go back into a header or a URL"
        )
    return value


def check_login_data(data: dict[str, Any], what: str = "login response") -> tuple[str, float]:
    """``(token, expires_at)`` from a login response's ``data``, checked.

    The token must be a :data:`MAX_TOKEN_LENGTH`-bounded RFC 6750 b64token;
    ``expires_at`` a finite number of unix seconds (an int or a float, not a
    bool) from 0 to :data:`MAX_EXPIRES_AT`.  Anything else is the server's
    fault: :class:`RemoteProtocolError`.
    """
    token = _check_token(data.get("token"), what)
    expires_at = data.get("expires_at")
    if isinstance(expires_at, bool) or not isinstance(expires_at, (int, float)):
        raise RemoteProtocolError(
            f"expected a number 'expires_at' in the {what}'s data, got {_describe(expires_at)}"
        )
    # Compared before any conversion: int 10**400 would overflow float().
    # NaN fails both comparisons, so it is refused too; infinities are out of range.
    if not 0 <= expires_at <= MAX_EXPIRES_AT:
        raise RemoteProtocolError(
            f"expected 'expires_at' in the {what}'s data to be unix seconds from 0 to "
            f"{MAX_EXPIRES_AT}, got {excerpt(repr(expires_at), 40)}"
        )
    return token, float(expires_at)


def check_stream_data(data: dict[str, Any], what: str = "text response") -> str:
    """The stream token from a text response's ``data``, checked as a login
    token is (see :func:`check_login_data`)."""
    return _check_token(data.get("token"), what)
