"""Lint for cassettes: what still looks like a secret.

:func:`lint` reports long hex or base64 runs, JWT shapes, bearer and basic
credentials, credential headers and URL query values that are not
placeholders, and *cut secrets*: a piece of text that ends a value where, in
another value, the same words lead up to a placeholder (cumulative events, a
shortened quote or a broken stream left a prefix of a redacted secret).

Lint reads files it did not write, so it runs in time linear in its input:
each rule is one pass over maximal runs of a character class (a regex of one
class, which cannot backtrack), and each run is then looked at with string
operations bounded by its length.  :class:`Scanner` counts that work, so a
test can hold it to a multiple of the input's size on adversarial input.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterable, Iterator

from .._errors import EXCERPT_LIMIT, escaped
from ._codings import DecodeBudget, body_codings, decode_body, shown_codings
from ._format import Cassette
from ._profiles import Profile, profile_named
from ._redact import MIN_REDACTED_PREFIX, PLACEHOLDER, origin_secrets
from ._value_spans import Span, body_spans, parse_message, query_value_spans, text_value_spans

__all__ = ["CUT_CONTEXT", "MAX_CUT_PIECE", "MAX_FINDINGS", "Scanner", "lint"]

#: How many characters before a placeholder identify its place in another
#: value.  Fewer would tie unrelated text together; more would miss a secret
#: quoted right after a short lead ("You said: “").
CUT_CONTEXT = 6

#: The longest cut piece lint looks for (characters).  A piece of a secret
#: longer than this is long enough for the hex/base64/JWT rules; the bound keeps
#: the cut rule's work per value end constant.
MAX_CUT_PIECE = 256

#: The most findings :func:`lint` lists; the rest are counted in one line.
#: A hostile file can hold a finding every few bytes, and nobody reads more
#: than this many lines to learn that a cassette is not clean.
MAX_FINDINGS = 200

_SECRET_HEADERS = frozenset({"cookie", "set-cookie", "proxy-authorization", "authorization"})

_ALNUM_RUN = re.compile(r"[0-9A-Za-z]+")
_HEX_RUN = re.compile(r"[0-9a-fA-F]+")
_BASE64_RUN = re.compile(r"[A-Za-z0-9+/]+")
_JWT_RUN = re.compile(r"[A-Za-z0-9_.-]+")
# A credential after the scheme names as they are written (RFC 9110 section
# 11.2, token68): any "Bearer <token>", and "Basic <token>" of at least 8
# characters (base64 of "user:pw"), so prose such as "basic idea" passes.
_SCHEME = re.compile(r"\b(Bearer|Basic) ")
_TOKEN68 = re.compile(r"[A-Za-z0-9._~+/-]+")
_BASE64_CHARS = re.compile(r"[A-Za-z0-9+/]+")
_ELLIPSIS = re.compile(r"\.\.\.|\u2026|\\u2026")
# What a piece of a placeholder looks like (a cut one: "<secr", "<x1>..").
_PLACEHOLDER_PIECE = re.compile(r"<[a-z-]*\d*>?\.*|\*+")
_SPACE = re.compile(r"\s")

_MIN_HEX = 24
_MIN_BASE64 = 32
_MIN_JWT_PART = 8
_MIN_BASIC = 8


class Scanner:
    """The text rules of :func:`lint`, with a count of the work they did.

    ``work`` grows by the length of every string a rule hands to a linear
    primitive (a one-class regex pass, ``str.find``, a membership test), so it
    bounds the time taken, whatever the input.
    """

    def __init__(self) -> None:
        self.work = 0

    def _runs(self, pattern: re.Pattern[str], text: str) -> Iterator[re.Match[str]]:
        self.work += len(text)
        for match in pattern.finditer(text):
            self.work += len(match.group())
            yield match

    def suspicious(self, text: str) -> Iterator[str]:
        """What in ``text`` looks like a secret, outside placeholders."""
        self.work += len(text)
        clean = PLACEHOLDER.sub(" ", text)
        for run in self._runs(_ALNUM_RUN, clean):
            # A hex run: a whole alphanumeric run, all hex digits.
            if len(run.group()) >= _MIN_HEX and _HEX_RUN.fullmatch(run.group()):
                yield f"a hex run of {len(run.group())} characters"
        for run in self._runs(_BASE64_RUN, clean):
            word = run.group()
            if len(word) >= _MIN_BASE64 and _mixed(word):
                yield f"a base64 run of {len(word) + _padding(clean, run.end())} characters"
        for run in self._runs(_JWT_RUN, clean):
            yield from self._jwts(run.group())
        self.work += len(clean)
        for scheme in _SCHEME.finditer(clean):
            credential = _TOKEN68 if scheme.group(1) == "Bearer" else _BASE64_CHARS
            token = credential.match(clean, scheme.end())
            if token is None:
                continue
            self.work += len(token.group())
            if scheme.group(1) == "Bearer" or len(token.group()) >= _MIN_BASIC:
                yield "a bearer or basic credential"

    def _jwts(self, run: str) -> Iterator[str]:
        # header.payload.signature, the header's base64url starting "eyJ"
        # (that is '{"'), each part at least 8 characters.
        parts = run.split(".")
        self.work += len(run)
        index = 0
        while index + 2 < len(parts):
            first = parts[index]
            lead = first.find("eyJ")
            if (
                lead >= 0
                and len(first) - lead - 3 >= _MIN_JWT_PART
                and len(parts[index + 1]) >= _MIN_JWT_PART
                and len(parts[index + 2]) >= _MIN_JWT_PART
            ):
                yield "a JWT"
                index += 3
            else:
                index += 1

    def cut_pieces(self, values: list[tuple[str, str]]) -> Iterator[tuple[str, int]]:
        """``(where, length)`` of every cut secret among ``values`` (``(where,
        text)`` pairs): a piece that ends a value (or stands before an
        ellipsis), is shorter than a placeholder, and follows the same
        :data:`CUT_CONTEXT` characters as that placeholder does elsewhere."""
        leads: dict[str, int] = {}
        for _, text in values:
            self.work += len(text)
            for match in PLACEHOLDER.finditer(text):
                start = match.start()
                if start >= CUT_CONTEXT:
                    lead = text[start - CUT_CONTEXT : start]
                    leads[lead] = max(leads.get(lead, 0), len(match.group()))
        if not leads:
            return
        longest = min(max(leads.values()), MAX_CUT_PIECE)
        for where, text in values:
            length = self._cut_piece(text, leads, longest)
            if length:
                yield where, length

    def _cut_piece(self, text: str, leads: dict[str, int], longest: int) -> int:
        self.work += len(text)
        ends = [m.start() for m in _ELLIPSIS.finditer(text)]
        ends.append(len(text))
        marks: list[int] = []  # where a lead ends, ascending
        checked = CUT_CONTEXT  # positions before this were looked at
        found = 0
        for end in ends:
            # Each position is looked at once, however many ends see it.
            for mark in range(max(checked, end - longest + 1), end - MIN_REDACTED_PREFIX + 1):
                self.work += CUT_CONTEXT
                if text[mark - CUT_CONTEXT : mark] in leads:
                    marks.append(mark)
            checked = max(checked, end - MIN_REDACTED_PREFIX + 1)
            nearest = bisect_right(marks, end - MIN_REDACTED_PREFIX) - 1
            if nearest < 0 or marks[nearest] <= end - longest:
                continue
            mark = marks[nearest]
            piece = text[mark:end]
            self.work += len(piece)
            if (
                len(piece) < leads[text[mark - CUT_CONTEXT : mark]]
                and not _PLACEHOLDER_PIECE.fullmatch(piece)
                # A piece that begins with a whole placeholder was redacted:
                # text after it (a closing quote, a line end) is not a secret.
                and not PLACEHOLDER.match(piece)
                and not _SPACE.search(piece)
            ):
                found = max(found, len(piece))
        return found


def _mixed(run: str) -> bool:
    # Base64 of random bytes mixes digits, capitals and small letters; words
    # and identifiers mostly do not.
    return (
        any(c.isdigit() for c in run)
        and any(c.isupper() for c in run)
        and any(c.islower() for c in run)
    )


def _padding(text: str, at: int) -> int:
    pad = 0
    while pad < 2 and text.startswith("=", at + pad):
        pad += 1
    return pad


def _decoded(data: bytes, spans: list[Span]) -> list[str]:
    return [data[a:b].decode("utf-8", "replace") for a, b in spans]


def lint(
    cassette: Cassette, scanner: Scanner | None = None, profile: Profile | None = None
) -> list[str]:
    """Where the cassette still holds something that looks like a secret.

    ``scanner`` (optional) counts the work done (see :class:`Scanner`);
    ``profile`` (default: the cassette's own) names more secret headers.
    """
    scanner = scanner or Scanner()
    profile = profile if profile is not None else profile_named(cassette.profile)
    findings: list[str] = []
    values: list[tuple[str, str]] = []
    # Coded bodies are read through, within one budget (see ._codings).
    budget = DecodeBudget()

    def scan(where: str, text: str) -> None:
        for what in scanner.suspicious(text):
            findings.append(f"{where}: {what}")

    def coded(where: str, headers: Iterable[tuple[str, str]], body: bytes) -> None:
        # A compressed body hides what it holds from the rules above.
        codings = body_codings(headers)
        if not codings:
            return
        named = shown_codings(codings)
        plain = decode_body(codings, body, budget)
        if plain is None:
            findings.append(f"{where}: a body in a content coding lint cannot read ({named})")
            return
        scan(f"{where} ({named})", plain.decode("utf-8", "replace"))
        content_type = next((v for n, v in headers if n.lower() == "content-type"), "")
        spans = body_spans(plain, content_type.encode("latin-1", "replace"))
        values.extend((f"{where} ({named})", v) for v in _decoded(plain, spans))

    scan("origin", cassette.origin)
    if origin_secrets(cassette.origin):
        findings.append("origin: an unredacted query value")
    for index, item in enumerate(cassette.interactions):
        spot = f"interactions[{index}]"
        request, response = item.request, item.response
        scan(f"{spot}.request.target", request.target)
        target = request.target.encode("latin-1", "replace")
        queries = _decoded(target, query_value_spans(target))
        values += [(f"{spot}.request.target", v) for v in queries]
        for number, (name, value) in enumerate(request.headers):
            # A header's name is the cassette's text: escaped and cut.
            shown = escaped(name, EXCERPT_LIMIT)
            scan(f"{spot}.request.headers[{number}] ({shown})", value)
            secret = name.lower() in _SECRET_HEADERS or profile.is_secret_header(name)
            if secret and not PLACEHOLDER.search(value):
                findings.append(
                    f"{spot}.request.headers[{number}] ({shown}): an unredacted credential"
                )
        scan(f"{spot}.request.body", request.body.decode("utf-8", "replace"))
        values += [
            (f"{spot}.request.body", v)
            for v in _decoded(request.body, text_value_spans(request.body))
        ]
        # A request's body may be coded too (a client that gzips its login).
        coded(f"{spot}.request.body", request.headers, request.body)
        for number, (name, value) in enumerate(response.headers):
            if name.lower() == "set-cookie" and not PLACEHOLDER.search(value):
                findings.append(f"{spot}.response.headers[{number}] (set-cookie): a cookie")
        # The whole stream at once: a secret may straddle two reads.
        wire = response.wire
        scan(f"{spot}.chunks", wire.decode("utf-8", "replace"))
        message = parse_message(wire)
        values += [(f"{spot}.chunks", v) for v in _decoded(message.payload, message.values)]
        coded(f"{spot}.chunks", response.headers, message.payload)
        for number, event in enumerate(response.events):
            scan(f"{spot}.events[{number}]", event.data)
    for where, length in scanner.cut_pieces(values):
        findings.append(f"{where}: a cut secret ({length} characters where a placeholder stands)")
    if len(findings) > MAX_FINDINGS:
        more = len(findings) - MAX_FINDINGS
        findings = [*findings[:MAX_FINDINGS], f"... and {more} more findings"]
    return findings
