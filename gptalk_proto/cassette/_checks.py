"""What a cassette file's text and fields must be, beyond their JSON types.

Each check says what is wrong (a phrase for a :class:`CassetteError`, which
the loader prefixes with the field) or returns None; none raises, so this
module needs nothing from the cassette classes.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from .._util import _TOKEN

__all__ = ["is_method", "is_request_target", "is_status", "nesting_problem", "origin_problem"]

# The rest of a JSON string after its opening quote (escapes included), and
# what the nesting scan stops at: a quote or a bracket.
_JSON_STRING_REST = re.compile(r'[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_JSON_SPECIAL = re.compile(r'["\[\]{}]')


def nesting_problem(text: str, limit: int) -> str | None:
    """Whether JSON ``text`` nests arrays and objects deeper than ``limit``,
    found in one linear pass before any parser recurses into it.

    Strings are skipped whole (brackets inside them do not count).  An
    unterminated string ends the scan: the JSON parser then reports it, and
    it never nests deeper than the brackets already counted.
    """
    depth = 0
    position = 0
    search = _JSON_SPECIAL.search
    while (found := search(text, position)) is not None:
        char = found.group()
        position = found.end()
        if char == '"':
            rest = _JSON_STRING_REST.match(text, position)
            if rest is None:
                return None
            position = rest.end()
        elif char in "[{":
            depth += 1
            if depth > limit:
                line = text.count("\n", 0, position) + 1
                return f"JSON nested deeper than {limit} levels (line {line})"
        else:
            depth -= 1
    return None


def is_method(method: str) -> bool:
    """RFC 9110 section 9.1: ``method = token``."""
    return _TOKEN.fullmatch(method) is not None


# RFC 9112 section 3.2: a request-target is visible ASCII -- no space, no
# control character, nothing beyond ASCII.
_TARGET = re.compile(r"[!-~]+")


def is_request_target(target: str) -> bool:
    """Whether ``target`` can stand in a request line."""
    return _TARGET.fullmatch(target) is not None


def is_status(status: int) -> bool:
    """RFC 9110 section 15: a status code is 100 to 599 (h11 reads any three
    digits as one)."""
    return 100 <= status <= 599


# What may never appear in a cassette's origin URL: controls, space, DEL.
_NOT_URL = re.compile(r"[\x00-\x20\x7f]")


def origin_problem(url: str) -> str | None:
    """Whether ``url`` is an http(s) URL with a host and a port a client can
    connect to, and without credentials (a path and a query may follow)."""
    bad = _NOT_URL.search(url)
    if bad is not None:
        return f"a URL cannot hold the character {bad.group()!r}"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:  # a bracket left open, a port out of range
        return f"not a URL ({exc})"
    if parts.scheme not in ("http", "https") or not url.startswith(parts.scheme + "://"):
        return "expected an http:// or https:// URL"
    if not parts.hostname:
        return "the URL has no host"
    if "@" in parts.netloc:
        return "the URL must not carry credentials"
    if port == 0:
        return "port 0 is not a port to connect to"
    return None
