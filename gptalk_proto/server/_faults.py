"""Faults the reference server can be told to commit, as data.

A fault is written ``KIND[=VALUE][@ENDPOINT][#WHICH]``:

* ``ENDPOINT`` is ``login``, ``text``, ``stream`` or ``any`` (each kind has a
  default);
* ``WHICH`` picks the requests to that endpoint, counted from 1 across all
  connections: ``#2`` (the second only), ``#2-4``, ``#3+`` (the third and
  after); without it, every request.

The kinds, their default endpoints and effects are :data:`FAULT_KINDS`: the
one table that ``gptalk serve --help`` and the README show.

Examples: ``status=503@text#1`` (the first text request gets a 503),
``envelope=quota@text#1``, ``cut=3``, ``newline=crlf``, ``keepalive=2``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import NamedTuple

from .._errors import LocalProtocolError

__all__ = [
    "BODILESS_STATUSES",
    "ENDPOINTS",
    "ENVELOPE_FAULTS",
    "FAULT_KINDS",
    "Fault",
    "FaultKind",
    "parse_fault",
]

ENDPOINTS = ("login", "text", "stream", "any")
ENVELOPE_FAULTS = ("quota", "expired", "invalid", "bad-request", "internal")

#: Statuses whose responses carry no content, which a ``status`` fault must
#: not name: it answers with a JSON body.  RFC 9110 section 15.3.5: "A 204
#: response is terminated by the end of the header section; it cannot contain
#: content"; 15.3.6: "a server MUST NOT generate content in a 205 response";
#: 15.4.5: "A 304 response is terminated by the end of the header section";
#: and 1xx responses are interim, never the answer (refused by the range).
BODILESS_STATUSES = frozenset({204, 205, 304})


class FaultKind(NamedTuple):
    """One kind of fault, as help texts show it."""

    spec: str
    """How it is written (``"status=N"``, ``"close"``)."""
    endpoint: str
    """The endpoint it applies to when the spec names none."""
    effect: str
    """What the server does."""


#: Every fault kind, in the order help texts list them.
FAULT_KINDS: tuple[FaultKind, ...] = (
    FaultKind(
        "status=N", "any", "answer HTTP `N` (200-599; not 204, 205, 304) with a JSON error body"
    ),
    FaultKind(
        "envelope=WHAT",
        "text",
        "HTTP 200 with an error envelope and no `data`; WHAT: " + ", ".join(ENVELOPE_FAULTS),
    ),
    FaultKind("close", "any", "read the request, close the connection, answer nothing"),
    FaultKind("stall=S", "any", "wait `S` seconds before answering"),
    FaultKind("drip=S", "stream", "send the head, then a body of one byte every `S` s, forever"),
    FaultKind("cut=K", "stream", "after `K` events send half of the next, then close"),
    FaultKind("malformed=K", "stream", "the `K`-th event's data is not JSON"),
    FaultKind("nocontent=K", "stream", "the `K`-th event's JSON has no `content`"),
    FaultKind("rewrite=K", "stream", "from the `K`-th event on, earlier text is changed"),
    FaultKind("newline=NL", "stream", "line ends: `lf`, `crlf` or `cr`"),
    FaultKind(
        "keepalive=N", "stream", "a keep-alive comment (`: keep-alive`) before every `N`-th event"
    ),
    FaultKind("delay=S", "stream", "wait `S` seconds between events"),
    FaultKind("coalesce", "stream", "send the whole stream as one chunk, not one per event"),
)


def _newline(value: str) -> str:
    table = {"lf": "\n", "crlf": "\r\n", "cr": "\r"}
    if value not in table:
        raise ValueError("expected lf, crlf or cr")
    return table[value]


def _envelope(value: str) -> str:
    if value not in ENVELOPE_FAULTS:
        raise ValueError(f"expected one of {', '.join(ENVELOPE_FAULTS)}")
    return value


def _whole(value: str) -> int:
    # int() would also take " 3", "+3", "3_0" and "\u0663"; and its own
    # message ("invalid literal for int() with base 10") is not for users.
    if not (value.isascii() and value.isdigit()) or len(value) > 9:
        raise ValueError(f"{value!r} is not a whole number")
    return int(value)


def _status(value: str) -> int:
    try:
        status = _whole(value)
    except ValueError:
        status = -1
    if not 200 <= status <= 599:
        raise ValueError(f"expected an HTTP status from 200 to 599, got {value!r}")
    if status in BODILESS_STATUSES:
        raise ValueError(
            f"status {status} carries no body; a status fault answers with one "
            "(pick another status, e.g. 500 or 503)"
        )
    return status


def _positive_int(value: str) -> int:
    number = _whole(value)
    if number < 1:
        raise ValueError("expected a whole number of at least 1")
    return number


def _count(value: str) -> int:
    return _whole(value)


def _seconds(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a number of seconds") from None
    if not 0 <= number < 86400:  # also refuses nan and inf
        raise ValueError("expected seconds from 0 to 86400")
    return number


_PARSERS: dict[str, Callable[[str], int | float | str] | None] = {
    "status": _status,
    "envelope": _envelope,
    "close": None,
    "stall": _seconds,
    "drip": _seconds,
    "cut": _count,
    "malformed": _positive_int,
    "nocontent": _positive_int,
    "rewrite": _positive_int,
    "newline": _newline,
    "keepalive": _positive_int,
    "delay": _seconds,
    "coalesce": None,
}

# kind -> (default endpoint, value parser or None for a bare flag)
_KINDS: dict[str, tuple[str, Callable[[str], int | float | str] | None]] = {
    kind.spec.partition("=")[0]: (kind.endpoint, _PARSERS[kind.spec.partition("=")[0]])
    for kind in FAULT_KINDS
}
assert _KINDS.keys() == _PARSERS.keys(), "every fault kind has a parser and a help line"

_SPEC = re.compile(
    r"(?P<kind>[a-z]+)(?:=(?P<value>[^@#]+))?(?:@(?P<endpoint>[a-z]+))?"
    r"(?:#(?P<first>\d+)(?:(?P<plus>\+)|-(?P<last>\d+))?)?"
)


class Fault(NamedTuple):
    """One fault: what to do, where, and to which requests."""

    kind: str
    value: int | float | str | None
    endpoint: str
    first: int = 1
    last: int | None = None  # inclusive; None: no end

    def applies(self, endpoint: str, number: int) -> bool:
        """Whether this fault hits the ``number``-th request to ``endpoint``."""
        if self.endpoint not in ("any", endpoint):
            return False
        return number >= self.first and (self.last is None or number <= self.last)

    def __str__(self) -> str:
        text = self.kind
        if self.value is not None:
            value = self.value
            if self.kind == "newline":
                value = {"\n": "lf", "\r\n": "crlf", "\r": "cr"}[str(value)]
            text += f"={value}"
        text += f"@{self.endpoint}"
        if (self.first, self.last) != (1, None):
            if self.last is None:
                text += f"#{self.first}+"
            elif self.last == self.first:
                text += f"#{self.first}"
            else:
                text += f"#{self.first}-{self.last}"
        return text


def parse_fault(spec: str) -> Fault:
    """Parse ``KIND[=VALUE][@ENDPOINT][#WHICH]``; a bad spec raises LocalProtocolError."""
    match = _SPEC.fullmatch(spec.strip())
    if match is None:
        raise LocalProtocolError(f"bad fault spec {spec!r}: expected KIND[=VALUE][@ENDPOINT][#N]")
    kind = match["kind"]
    if kind not in _KINDS:
        raise LocalProtocolError(
            f"bad fault spec {spec!r}: unknown kind {kind!r} (known: {', '.join(_KINDS)})"
        )
    default_endpoint, parse_value = _KINDS[kind]
    raw = match["value"]
    value: int | float | str | None = None
    if parse_value is None:
        if raw is not None:
            raise LocalProtocolError(f"bad fault spec {spec!r}: {kind!r} takes no value")
    else:
        if raw is None:
            raise LocalProtocolError(f"bad fault spec {spec!r}: {kind!r} needs a value")
        try:
            value = parse_value(raw)
        except ValueError as exc:
            raise LocalProtocolError(f"bad fault spec {spec!r}: {exc}") from None
    endpoint = match["endpoint"] or default_endpoint
    if endpoint not in ENDPOINTS:
        known = ", ".join(ENDPOINTS)
        raise LocalProtocolError(
            f"bad fault spec {spec!r}: unknown endpoint {endpoint!r} (known: {known})"
        )
    if default_endpoint == "stream" and endpoint != "stream":
        raise LocalProtocolError(f"bad fault spec {spec!r}: {kind!r} applies to @stream only")
    first, last = 1, None
    if match["first"] is not None:
        first = int(match["first"])
        if first < 1:
            raise LocalProtocolError(f"bad fault spec {spec!r}: requests are counted from 1")
        if match["plus"]:
            last = None
        elif match["last"] is not None:
            last = int(match["last"])
            if last < first:
                raise LocalProtocolError(f"bad fault spec {spec!r}: empty range")
        else:
            last = first
    return Fault(kind, value, endpoint, first, last)


def parse_faults(specs: Iterable[str | Fault]) -> tuple[Fault, ...]:
    """Parse several specs (Fault objects pass through)."""
    return tuple(spec if isinstance(spec, Fault) else parse_fault(spec) for spec in specs)
