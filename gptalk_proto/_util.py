"""Small shared helpers: sentinels and value validation."""

from __future__ import annotations

from typing import Final

from ._errors import LocalProtocolError

__all__ = ["NEED_DATA", "PAUSED", "SEND_REQUEST", "Sentinel", "check_header_value"]


class Sentinel:
    """A named singleton, compared with ``is``.

    Sentinels are what ``next_event()`` returns when there is no event but
    the caller has something to do; they are never confused with events
    because they are not instances of any event class.
    """

    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return self._name

    def __reduce__(self) -> str:
        # Pickling by name keeps ``is`` comparisons working after a round trip.
        return self._name


NEED_DATA: Final = Sentinel("NEED_DATA")
"""The machine needs more bytes from the peer (or, at the exchange level, the
next response head or body chunk)."""

SEND_REQUEST: Final = Sentinel("SEND_REQUEST")
"""The machine has a request to make: call ``send(now)`` (bytes level) or
``next_request(now)`` (exchange level)."""

PAUSED: Final = Sentinel("PAUSED")
"""Nothing more will happen: the chat is over (or the connection is done)."""


def check_header_value(name: str, value: str) -> str:
    """Refuse a user-supplied value that could split an HTTP header.

    A CR or LF in a header value would let the value start a header of its own
    (request smuggling / header injection); NUL is refused for the same reason
    by RFC 9110 section 5.5.  This runs before anything is sent.
    """
    if not isinstance(value, str):
        raise LocalProtocolError(f"{name} must be a str, not {type(value).__name__}")
    if "\r" in value or "\n" in value or "\x00" in value:
        raise LocalProtocolError(f"{name} must not contain CR, LF or NUL")
    return value
