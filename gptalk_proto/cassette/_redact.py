"""Redaction of cassettes.

Redaction is on by default.  It finds the secrets a GPTalk session carries
(login tokens, stream tokens, fingerprints, bearer values, cookies and
set-cookies, proxy credentials, the query values of the service URL, and
whatever the caller lists) and replaces each with a placeholder such as
``<login-token-1>.........``: the same secret always gets the same
placeholder, and the placeholder has the secret's length in bytes, so
Content-Length and chunk sizes in the recorded bytes stay true and a replay
still parses.  A replayed login hands the client the placeholder, which the
client then sends back: matching needs no knowledge of the real values.

Secrets are replaced inside values only (header values, request paths other
than the profile's steps, query values, JSON string values, SSE data: see
:mod:`._value_spans`), never in protocol syntax,
so no secret, however it is spelled, can break a cassette.  In what a response
says, the pieces of a secret that end a value are replaced too (see
:data:`MIN_REDACTED_PREFIX`): cumulative events carry every prefix of a
secret the reply quotes.
"""

from __future__ import annotations

import json
import re
from bisect import bisect_right
from collections.abc import Callable, Iterable
from dataclasses import replace
from urllib.parse import parse_qs, unquote_plus, urlsplit

from .._errors import LocalProtocolError, RemoteProtocolError
from .._scrub import PLACEHOLDER, secret_spellings
from ..sse._media import media_type
from ._codings import DecodeBudget, body_codings, decode_body, shown_codings
from ._format import (
    Cassette,
    CassetteError,
    Interaction,
    RecordedChunk,
    RecordedRequest,
    RecordedResponse,
)
from ._profiles import Profile, profile_named
from ._response import parse_response
from ._value_spans import (
    FRAMING_HEADERS,
    Span,
    body_spans,
    parse_message,
    put_payload,
    query_value_spans,
    target_value_spans,
)

__all__ = [
    "MIN_REDACTED_PREFIX",
    "MIN_SECRET_LENGTH",
    "PLACEHOLDER",
    "check_secrets",
    "origin_secrets",
    "redact",
]


_SECRET_HEADERS = {
    "cookie": "cookie",
    "set-cookie": "cookie",
    "proxy-authorization": "proxy-credentials",
}
_ABBREVIATIONS = {
    "login-token": "t",
    "stream-token": "s",
    "fingerprint": "f",
    "bearer": "b",
    "cookie": "c",
    "proxy-credentials": "p",
    "secret": "x",
}


def _placeholder(kind: str, number: int, length: int) -> str:
    for tag in (f"<{kind}-{number}>", f"<{_ABBREVIATIONS[kind]}{number}>"):
        if len(tag) <= length:
            return tag + "." * (length - len(tag))
    return "*" * length  # too short to say more


def _response_json(item: Interaction, budget: DecodeBudget) -> object:
    # Read through the body's content codings (see ._codings): a service
    # that compressed its login answer still handed out a token.
    try:
        _, headers, body, _ = parse_response(item.request.method, item.response.wire)
        return json.loads(_decoded(headers, body, budget))  # (b"": not JSON)
    except (RemoteProtocolError, ValueError, UnicodeDecodeError, RecursionError):
        return None


def _request_json(request: RecordedRequest, budget: DecodeBudget) -> object:
    if not body_codings(request.headers):
        return request.json()  # (parsed once, kept on the request)
    try:
        return json.loads(_decoded(request.headers, request.body, budget))  # (b"": not JSON)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None


def _check_coded(cassette: Cassette, table: dict[bytes, bytes], budget: DecodeBudget) -> None:
    """Refuse a cassette that would keep a secret inside a coded body.

    Redaction replaces values in place, at the same length; inside a
    compressed body it cannot (the compressed bytes, and every length that
    frames them, would change), and in a coding it cannot read it cannot
    even look.  Such a body is kept as recorded when it holds none of the
    secrets found, and is an error otherwise: a cassette marked redacted
    must not keep one.  The message names the place, never the secret."""
    for index, item in enumerate(cassette.interactions):
        request = item.request
        sides = [("request", body_codings(request.headers), request.body)]
        codings = body_codings(item.response.headers)
        if codings:
            try:
                _, _, body, _ = parse_response(request.method, item.response.wire)
            except RemoteProtocolError:
                body = item.response.wire
            sides.append(("response", codings, body))
        for side, codings, body in sides:
            if not codings:
                continue
            # Named as the message may (see shown_codings), never with a
            # secret (lowercase, as body_codings gives them).
            listed = ", ".join(codings)
            named = shown_codings(codings)
            if any(secret.decode("utf-8", "replace").lower() in listed for secret in table):
                named = "named with a secret"
            decoded = decode_body(codings, body, budget)
            if decoded is None:
                problem = f"is in a content coding redaction cannot read ({named})"
            elif any(
                secret in decoded or _piece_before(decoded, len(decoded), secret)
                for secret in table
            ):
                # (or a piece of one where a stream was cut, as in values)
                problem = f"holds a secret inside its content coding ({named})"
            else:
                continue
            raise CassetteError(
                f"interactions[{index}]: the {side}'s body {problem}, which redaction "
                "cannot replace without changing the recorded bytes; record it "
                "uncompressed (a client that sends Accept-Encoding: identity; the "
                "recording proxy asks for it when it redacts), or without "
                "redaction if the cassette may keep its secrets"
            )


def _find(
    cassette: Cassette, extra: Iterable[str], profile: Profile, budget: DecodeBudget
) -> dict[str, str]:
    """Every secret in the cassette, in order of first appearance -> its kind."""
    found: dict[str, str] = {}

    def add(value: object, kind: str) -> None:
        if isinstance(value, str) and value and not PLACEHOLDER.fullmatch(value):
            found.setdefault(value, kind)

    for value in origin_secrets(cassette.origin):
        add(value, "secret")
    if not profile.gptalk_secrets:
        for item in cassette.interactions:
            _find_by_name(item, profile, add, budget)
        for value in extra:
            add(value, "secret")
        return found
    for item in cassette.interactions:
        request = item.request
        body = _request_json(request, budget)
        if isinstance(body, dict):
            add(body.get("fingerprint"), "fingerprint")
        for name, value in request.headers:
            lowered = name.lower()
            if lowered == "authorization":
                scheme, _, credential = value.partition(" ")
                add(credential.strip() or scheme, "bearer")
            elif lowered in _SECRET_HEADERS:
                add(_credential(lowered, value), _SECRET_HEADERS[lowered])
        for key, values in parse_qs(urlsplit(request.target).query).items():
            if key == "token":
                for value in values:
                    add(value, "stream-token")
        data = _response_json(item, budget)
        if isinstance(data, dict) and isinstance(data.get("data"), dict):
            token = data["data"].get("token")
            add(token, "login-token" if item.kind == "login" else "stream-token")
        for name, value in item.response.headers:
            if name.lower() == "set-cookie":
                add(value.split(";", 1)[0].partition("=")[2], "cookie")
    for value in extra:
        add(value, "secret")
    return found


#: The deepest a JSON body is searched for secret fields: a cassette's JSON
#: is at most MAX_DEPTH deep anyway; this bounds the recursion on its own.
MAX_SECRET_FIELD_DEPTH = 64


def _find_by_name(
    item: Interaction, profile: Profile, add: Callable[[object, str], None], budget: DecodeBudget
) -> None:
    """The secrets a profile names: header names, query keys, JSON fields."""
    request = item.request
    for name, value in request.headers:
        if profile.is_secret_header(name):
            lowered = name.lower()
            if lowered in ("authorization", "proxy-authorization"):
                # Any scheme: the credential after it (or the whole value).
                add(value.partition(" ")[2].strip() or value, "bearer")
            elif lowered in ("cookie", "set-cookie"):
                add(value, "cookie")
            else:
                add(value, "secret")
    # A query's values, as a form's (see _form_fields): decoded and as spelled.
    _form_fields(
        urlsplit(request.target).query.encode("utf-8", "surrogateescape"),
        profile.secret_query_keys,
        add,
    )
    _json_fields(_request_json(request, budget), profile.secret_fields, add, 0)
    _json_fields(_response_json(item, budget), profile.secret_fields, add, 0)
    # A form's fields (an OAuth token request's client_secret, say), read
    # through its codings as JSON is: a gzip form kept its secret otherwise.
    if _is_form(request.headers):
        _form_fields(_decoded(request.headers, request.body, budget), profile.secret_fields, add)
    if _is_form(item.response.headers):
        try:
            _, headers, body, _ = parse_response(request.method, item.response.wire)
        except RemoteProtocolError:
            headers, body = (), b""
        _form_fields(_decoded(headers, body, budget), profile.secret_fields, add)
    for name, value in item.response.headers:
        if name.lower() == "set-cookie":
            add(value.split(";", 1)[0].partition("=")[2], "cookie")
        elif profile.is_secret_header(name):
            add(value, "secret")


def _decoded(headers: Iterable[tuple[str, str]], body: bytes, budget: DecodeBudget) -> bytes:
    """``body`` with its content codings undone; empty when they cannot be
    (``_check_coded`` then refuses the body)."""
    codings = body_codings(headers)
    if not codings:
        return body
    return decode_body(codings, body, budget) or b""


def _is_form(headers: Iterable[tuple[str, str]]) -> bool:
    """Whether the (first) Content-Type says a form."""
    content_type = next((v for n, v in headers if n.lower() == "content-type"), "")
    return media_type(content_type) == "application/x-www-form-urlencoded"


def _form_fields(body: bytes, names: frozenset[str], add: Callable[[object, str], None]) -> None:
    # As a query (WHATWG URL's application/x-www-form-urlencoded parsing):
    # "+" is a space, values percent-decoded, bytes past UTF-8 replaced.
    # One pass over the pairs: linear in the body, which is capped where it
    # is read (a request, MAX_PROXIED_REQUEST; a response, the recorder's).
    # The value as spelled too: the decoded one's spellings (see _table)
    # are as is, JSON-escaped and quote()d, never "+" for a space nor a
    # lowercase escape, so a password "a b" sent as "a+b" stayed.
    text = body.decode("utf-8", "replace")
    for pair in text.split("&"):
        key, equals, value = pair.partition("=")
        if equals and unquote_plus(key) in names:
            add(unquote_plus(value), "secret")
            add(value, "secret")


def _json_fields(
    value: object, names: frozenset[str], add: Callable[[object, str], None], depth: int
) -> None:
    if depth > MAX_SECRET_FIELD_DEPTH:
        return
    if isinstance(value, dict):
        for key, inner in value.items():
            if key in names and isinstance(inner, str):
                add(inner, "secret")
            else:
                _json_fields(inner, names, add, depth + 1)
    elif isinstance(value, list):
        for inner in value:
            _json_fields(inner, names, add, depth + 1)


def origin_secrets(url: str) -> list[str]:
    """The query values of a service URL (``?apikey=...``): secrets, unless
    shorter than :data:`MIN_SECRET_LENGTH` or placeholders already."""
    try:
        query = urlsplit(url).query
    except ValueError:
        return []
    return [
        value
        for values in parse_qs(query).values()
        for value in values
        if len(value) >= MIN_SECRET_LENGTH and not PLACEHOLDER.fullmatch(value)
    ]


def _credential(header: str, value: str) -> str:
    if header == "proxy-authorization":
        return value.partition(" ")[2].strip() or value
    return value


_NUMBERED = re.compile(r"<([a-z-]+)-(\d+)>|<([a-z])(\d+)>")
_KINDS_BY_ABBREVIATION = {short: kind for kind, short in _ABBREVIATIONS.items()}


def _numbers_in_use(cassette: Cassette) -> dict[str, int]:
    # A cassette extended by a later recording keeps its placeholders; new
    # secrets are numbered after them (long and short forms alike), so no two
    # secrets share one.
    used: dict[str, int] = {}
    for match in _NUMBERED.finditer(cassette.dumps()):
        if match.group(1):
            kind, number = match.group(1), int(match.group(2))
        else:
            kind, number = _KINDS_BY_ABBREVIATION.get(match.group(3), ""), int(match.group(4))
        used[kind] = max(used.get(kind, 0), number)
    return used


def _table(found: dict[str, str], counters: dict[str, int]) -> dict[bytes, bytes]:
    """Every spelling of every secret -> its placeholder (same byte length)."""
    pairs: dict[bytes, bytes] = {}
    for secret, kind in found.items():
        counters[kind] = counters.get(kind, 0) + 1
        for variant in secret_spellings(secret):
            raw = variant.encode()
            pairs.setdefault(raw, _placeholder(kind, counters[kind], len(raw)).encode())
    return pairs


#: The shortest secret a caller may name.  Redaction works on values only, so
#: a short secret cannot break a cassette; but one of a few characters (``a``,
#: ``1``) matches everywhere and turns a cassette into asterisks, which hides
#: nothing and helps nobody.  Four keeps PINs and short words possible.
MIN_SECRET_LENGTH = 4

#: The shortest piece of a secret that is redacted where a value ends with it.
#: A service streams cumulative content (each event repeats the text so far),
#: so a secret the reply quotes shows up cut after every piece; a stream that
#: breaks, or a quote the server shortens, cuts it too.  Pieces of at least
#: this many characters are replaced by the same piece of the placeholder (so
#: the events still extend one another, but for the one step where the piece
#: grows long enough); shorter ones are left, as they would match ordinary
#: text too often to mean anything.
MIN_REDACTED_PREFIX = 4

# Where a shortened text says so: three dots, or the ellipsis character
# (written as is, or JSON-escaped).
_ELLIPSIS = re.compile(rb"\.\.\.|\xe2\x80\xa6|\\u2026")

_PLACEHOLDER_BYTES = re.compile(PLACEHOLDER.pattern.encode())


def check_secrets(secrets: Iterable[str]) -> tuple[str, ...]:
    """The caller's extra secrets, checked: a list (or other iterable) of
    strings, each at least :data:`MIN_SECRET_LENGTH` characters long.

    Raises :class:`LocalProtocolError` otherwise; the message never quotes a
    secret.  A single string is refused rather than read as its characters
    (``secrets="ab"`` would redact every ``a`` and ``b``).
    """
    if isinstance(secrets, (str, bytes)):
        raise LocalProtocolError(
            "secrets must be a list of strings, not one string "
            "(write secrets=[...], even for one secret)"
        )
    checked = []
    for number, secret in enumerate(secrets, 1):
        if not isinstance(secret, str):
            raise LocalProtocolError(f"secret {number} is a {type(secret).__name__}, not a string")
        if len(secret) < MIN_SECRET_LENGTH:
            raise LocalProtocolError(
                f"secret {number} is too short to redact: it must have at least "
                f"{MIN_SECRET_LENGTH} characters (a shorter one matches almost anywhere)"
            )
        checked.append(secret)
    return tuple(checked)


class _Redactor:
    """Replaces secrets inside values only (see :mod:`._value_spans`)."""

    def __init__(self, table: dict[bytes, bytes]) -> None:
        self.table = table
        # Longest first, so a secret inside a longer one does not break it
        # up; a placeholder already there (an extended cassette) is kept as
        # is, so a secret spelled like a part of it cannot break it either.
        variants = sorted(table, key=len, reverse=True)
        self.pattern = (
            re.compile(
                b"(" + _PLACEHOLDER_BYTES.pattern + b")|" + b"|".join(map(re.escape, variants))
            )
            if variants
            else None
        )
        # The spellings long enough to leave a redactable piece.
        self.cuttable = [v for v in variants if len(v) > MIN_REDACTED_PREFIX]

    def value(self, data: bytes, *, cut: bool, json: bool = False) -> bytes:
        """``data`` (one value) with every secret replaced; with ``cut``, also
        the pieces of secrets that end it or stand before an ellipsis.  In a
        JSON string (``json``), escapes are syntax: no replacement starts or
        ends inside one (``\\there`` is a tab and "here", not "there")."""
        if self.pattern is None:
            return data
        escapes = _Escapes(data) if json and b"\\" in data else None
        pieces, at, search = [], 0, 0
        while (match := self.pattern.search(data, search)) is not None:
            if match.group(1):  # a placeholder already: kept whole
                search = match.end()
            elif escapes and escapes.cut(match.start(), match.end()):
                search = match.start() + 1  # a secret may still start after it
            else:
                pieces += [data[at : match.start()], self.table[match.group()]]
                at = search = match.end()
        data = b"".join([*pieces, data[at:]])
        if not cut or not self.cuttable:
            return data
        out = bytearray(data)
        ends = [m.start() for m in _ELLIPSIS.finditer(data)]
        for end in [*ends, len(data)]:
            self._cut_piece(out, end, escapes)
        return bytes(out)

    def _cut_piece(self, out: bytearray, end: int, escapes: _Escapes | None) -> None:
        best, placeholder = 0, b""
        for variant in self.cuttable:
            length = _piece_before(out, end, variant)
            if length > best and not (escapes and escapes.cut(end - length, end)):
                best, placeholder = length, self.table[variant]
        if best:
            out[end - best : end] = placeholder[:best]

    def values(self, data: bytes, spans: list[Span], *, cut: bool) -> bytes:
        """``data`` with :meth:`value` applied to each span."""
        if self.pattern is None or not spans:
            return data
        out = bytearray(data)
        for start, end in spans:
            # Only a JSON string's contents follow a quote (header values
            # follow a colon, query values "=", event data "data:").
            json = start > 0 and data[start - 1] == ord('"')
            out[start:end] = self.value(bytes(data[start:end]), cut=cut, json=json)
        return bytes(out)

    def message(self, wire: bytes) -> bytes:
        """A recorded response: header values, and the content's values
        (de-chunked, so framing is never touched and never splits a secret)."""
        message = parse_message(wire)
        out = bytearray(self.values(wire, message.headers, cut=False))
        # What a response says may have been cut anywhere: by the service's
        # cumulative events, by a shortened quote, by a broken stream.
        put_payload(out, message.pieces, self.values(message.payload, message.values, cut=True))
        return bytes(out)

    def request(self, request: RecordedRequest, profile: Profile) -> RecordedRequest:
        """A recorded request: its path (unless it is one of the profile's
        steps: a step's path is syntax, which says what the step is), query
        values, header values, body values."""
        headers = []
        for name, value in request.headers:
            if name.lower() not in _FRAMING_NAMES:
                value = self._text(value, lambda raw: [(0, len(raw))])  # noqa: PLW2901
            headers.append((name, value))
        path = urlsplit(request.target).path
        spans_of_target = query_value_spans if profile.kind(path) != "other" else target_value_spans
        ctype = next((v for n, v in request.headers if n.lower() == "content-type"), "")
        spans = body_spans(request.body, ctype.encode("utf-8", "replace"))
        return replace(
            request,
            target=self._text(request.target, spans_of_target),
            headers=tuple(headers),
            body=self.values(request.body, spans, cut=False),
        )

    def url(self, url: str) -> str:
        """A URL with the secrets in its path and query values replaced."""
        return self._text(url, target_value_spans)

    def _text(self, text: str, spans: Callable[[bytes], list[Span]]) -> str:
        # Header values and targets were read as latin-1 (one character per
        # byte, so secrets match the bytes that were sent); a text that is
        # not latin-1 (a hand-edited cassette) is taken as UTF-8.
        codec = "latin-1" if _is_latin1(text) else "utf-8"
        raw = text.encode(codec, "surrogatepass")
        return self.values(raw, spans(raw), cut=False).decode(codec, "surrogatepass")


_FRAMING_NAMES = frozenset(name.decode("ascii") for name in FRAMING_HEADERS)


def _is_latin1(text: str) -> bool:
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


class _Escapes:
    """Where a JSON string's escapes are (RFC 8259 section 7), to keep
    replacements off them; found in one pass."""

    _ESCAPE = re.compile(rb"\\(?:u[0-9A-Fa-f]{0,4}|.?)", re.DOTALL)

    def __init__(self, data: bytes) -> None:
        self.starts: list[int] = []
        self.ends: list[int] = []
        for match in self._ESCAPE.finditer(data):
            self.starts.append(match.start())
            self.ends.append(match.end())

    def _inside(self, at: int) -> bool:
        index = bisect_right(self.starts, at - 1) - 1  # the last escape starting before ``at``
        return index >= 0 and at < self.ends[index]

    def cut(self, start: int, end: int) -> bool:
        """Whether ``data[start:end]`` begins or ends inside an escape."""
        return self._inside(start) or self._inside(end)


def _piece_before(data: bytes | bytearray, end: int, variant: bytes) -> int:
    """The length of the longest proper prefix of ``variant`` (at least
    :data:`MIN_REDACTED_PREFIX`) that ``data[:end]`` ends with, or 0."""
    start = max(0, end - len(variant) + 1)
    head = variant[:MIN_REDACTED_PREFIX]
    at = data.find(head, start, end)
    while at >= 0:
        # The first hit leaves the longest piece.
        if variant.startswith(data[at:end]):
            return end - at
        at = data.find(head, at + 1, end)
    return 0


def redact(
    cassette: Cassette, secrets: Iterable[str] = (), profile: Profile | None = None
) -> Cassette:
    """A copy of ``cassette`` with every secret replaced by its placeholder.

    ``secrets`` are the caller's own (see :func:`check_secrets`); the ones the
    ``profile`` names (default: the cassette's own; GPTalk's tokens, or any
    API's credentials under ``generic``) are found here, and so are the query
    values of the cassette's origin URL (an API key there is a secret like
    any other).

    Raises :class:`CassetteError` when a body in a content coding (gzip,
    say) holds a secret, or is in a coding this cannot read (see
    ``_check_coded``).
    """
    profile = profile if profile is not None else profile_named(cassette.profile)
    # One budget for the coded bodies the two passes decode (see ._codings).
    budget = DecodeBudget()
    found = _find(cassette, check_secrets(secrets), profile, budget)
    table = _table(found, _numbers_in_use(cassette))
    _check_coded(cassette, table, budget)
    redactor = _Redactor(table)
    items = []
    for item in cassette.interactions:
        request = redactor.request(item.request, profile)
        # Redact the whole byte stream (a secret may straddle two reads),
        # then cut it again where the reads were: the lengths did not change.
        wire = redactor.message(item.response.wire)
        chunks, start = [], 0
        for chunk in item.response.chunks:
            chunks.append(RecordedChunk(chunk.t, wire[start : start + len(chunk.data)]))
            start += len(chunk.data)
        status, headers, _, events = parse_response(request.method, wire)
        response = RecordedResponse(
            status, headers, tuple(chunks), tuple(events), item.response.end
        )
        items.append(Interaction(item.connection, request, response))
    return replace(
        cassette, origin=redactor.url(cassette.origin), interactions=tuple(items), redacted=True
    )
