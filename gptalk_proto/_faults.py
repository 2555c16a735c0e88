"""Faults the reference server can be told to commit, as data.

A fault is written ``KIND[=VALUE][@ENDPOINT][#WHICH]``:

* ``ENDPOINT`` is ``login``, ``text``, ``stream`` or ``any`` (each kind has a
  default, below);
* ``WHICH`` picks the requests to that endpoint, counted from 1 across all
  connections: ``#2`` (the second only), ``#2-4``, ``#3+`` (the third and
  after); without it, every request.

=================  =======  ======================================================
kind               default  effect
=================  =======  ======================================================
``status=N``       any      answer HTTP ``N`` with a JSON error body
``envelope=WHAT``  text     HTTP 200 with an error envelope and no ``data``;
                            WHAT: quota, expired, invalid, bad-request, internal
``close``          any      read the request, close the connection, answer nothing
``stall=S``        any      wait ``S`` seconds before answering
``drip=S``         stream   send the head, then a body of one byte every ``S`` s,
                            forever
``cut=K``          stream   after ``K`` events send half of the next, then close
``malformed=K``    stream   the ``K``-th event's data is not JSON
``nocontent=K``    stream   the ``K``-th event's JSON has no ``content``
``rewrite=K``      stream   from the ``K``-th event on, earlier text is changed
``newline=NL``     stream   line ends: ``lf``, ``crlf`` or ``cr``
``keepalive=N``    stream   a ``: keep-alive`` comment before every ``N``-th event
``delay=S``        stream   wait ``S`` seconds between events
``coalesce``       stream   send the whole stream as one chunk, not one per event
=================  =======  ======================================================

Examples: ``status=503@text#1`` (the first text request gets a 503),
``envelope=quota@text#1``, ``cut=3``, ``newline=crlf``, ``keepalive=2``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import NamedTuple

from ._errors import LocalProtocolError

__all__ = ["ENDPOINTS", "ENVELOPE_FAULTS", "Fault", "parse_fault"]

ENDPOINTS = ("login", "text", "stream", "any")
ENVELOPE_FAULTS = ("quota", "expired", "invalid", "bad-request", "internal")


def _newline(value: str) -> str:
    table = {"lf": "\n", "crlf": "\r\n", "cr": "\r"}
    if value not in table:
        raise ValueError("expected lf, crlf or cr")
    return table[value]


def _envelope(value: str) -> str:
    if value not in ENVELOPE_FAULTS:
        raise ValueError(f"expected one of {', '.join(ENVELOPE_FAULTS)}")
    return value


def _status(value: str) -> int:
    status = int(value)
    if not 200 <= status <= 599:
        raise ValueError("expected an HTTP status from 200 to 599")
    return status


def _positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise ValueError("expected a whole number of at least 1")
    return number


def _count(value: str) -> int:
    number = int(value)
    if number < 0:
        raise ValueError("expected a whole number of at least 0")
    return number


def _seconds(value: str) -> float:
    number = float(value)
    if not 0 <= number < 86400:
        raise ValueError("expected seconds from 0 to 86400")
    return number


# kind -> (default endpoint, value parser or None for a bare flag)
_KINDS: dict[str, tuple[str, Callable[[str], int | float | str] | None]] = {
    "status": ("any", _status),
    "envelope": ("text", _envelope),
    "close": ("any", None),
    "stall": ("any", _seconds),
    "drip": ("stream", _seconds),
    "cut": ("stream", _count),
    "malformed": ("stream", _positive_int),
    "nocontent": ("stream", _positive_int),
    "rewrite": ("stream", _positive_int),
    "newline": ("stream", _newline),
    "keepalive": ("stream", _positive_int),
    "delay": ("stream", _seconds),
    "coalesce": ("stream", None),
}

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
