"""Small shared helpers: sentinels, value validation, capped memos."""

from __future__ import annotations

import re
from enum import Enum
from typing import Final, TypeAlias, TypeVar

from ._errors import LocalProtocolError

__all__ = [
    "MAX_RETRY_AFTER_LENGTH",
    "NEED_DATA",
    "PAUSED",
    "RETRY_AFTER_STATUSES",
    "SEND_REQUEST",
    "NeedData",
    "Paused",
    "SendRequest",
    "Sentinel",
    "check_header_name",
    "check_header_value",
    "check_text_value",
    "header_text",
    "remember",
]

_K = TypeVar("_K")
_V = TypeVar("_V")


def remember(table: dict[_K, _V], key: _K, value: _V, cap: int) -> None:
    """``table[key] = value`` in a memo of at most ``cap`` entries (plus
    those other threads add at the same moment): one entry too many empties
    it first.  So the entries in use now are learnt again at their next
    miss, and a peer that sends new keys on purpose cannot make the memo
    hold more, nor keep the common keys out for good.  The memos of read
    heads and field lines are capped this way (each names its cap)."""
    if len(table) >= cap:
        table.clear()
    table[key] = value


class _SentinelEnum(Enum):
    """Shows a sentinel by its bare name, as the constant is spelled."""

    def __repr__(self) -> str:
        return self.name


# One Enum, with one member, per sentinel: ``event is NEED_DATA`` then narrows
# ``event`` for mypy (to ``NeedData`` in the branch, and away from it after),
# which one shared class could not.  Enum members also pickle by name, so
# ``is`` holds after a round trip.


class NeedData(_SentinelEnum):
    """The type of :data:`NEED_DATA`."""

    NEED_DATA = "NEED_DATA"


class SendRequest(_SentinelEnum):
    """The type of :data:`SEND_REQUEST`."""

    SEND_REQUEST = "SEND_REQUEST"


class Paused(_SentinelEnum):
    """The type of :data:`PAUSED`."""

    PAUSED = "PAUSED"


NEED_DATA: Final = NeedData.NEED_DATA
"""The machine needs more bytes from the peer (or, at the exchange level, the
next response head or body chunk)."""

SEND_REQUEST: Final = SendRequest.SEND_REQUEST
"""The machine has a request to make: call ``send(now)`` (bytes level) or
``next_request(now)`` (exchange level)."""

PAUSED: Final = Paused.PAUSED
"""Nothing more will happen: the chat is over (or the connection is done)."""

Sentinel: TypeAlias = NeedData | SendRequest | Paused
"""What ``next_event()`` returns when there is no event: never an instance of
an event class.  (A union, so ``isinstance(x, Sentinel)`` needs Python 3.10's
union isinstance, which the project requires.)"""


# RFC 9110 section 5.5: a field value is visible characters, obs-text (latin-1
# beyond ASCII), spaces and tabs -- no other control character.
_NOT_FIELD_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]|[^\x00-\xff]")


def check_header_value(name: str, value: str) -> str:
    """Refuse a user-supplied value that cannot be an HTTP header value.

    Above all a CR or LF, which would let the value start a header of its own
    (header injection, request smuggling); also NUL and the other control
    characters, and characters latin-1 cannot carry.  This runs before
    anything is sent, and is why requests can skip h11's own checks.
    """
    if not isinstance(value, str):
        raise LocalProtocolError(f"{name} must be a str, not {type(value).__name__}")
    # Printable ASCII (0x20-0x7e) is the common case, and always valid: two
    # C scans instead of the regex (this runs several times per request).
    if value.isascii() and value.isprintable():
        return value
    bad = _NOT_FIELD_VALUE.search(value)
    if bad is not None:
        what = "CR or LF" if bad.group() in "\r\n" else f"the character {bad.group()!r}"
        raise LocalProtocolError(f"{name} must not contain {what} (it goes in an HTTP header)")
    return value


# RFC 9110 section 5.1: field-name = token.
_TOKEN = re.compile(r"[-!#$%&'*+.^_`|~0-9A-Za-z]+")


def check_header_name(name: str) -> str:
    """Refuse a header name that is not an RFC 9110 token."""
    if not isinstance(name, str) or not _TOKEN.fullmatch(name):
        raise LocalProtocolError(f"invalid header name {name!r}")
    return name


def check_text_value(name: str, value: str) -> str:
    """Refuse a user-supplied value with a CR, LF or NUL (for values sent in
    bodies, where other characters are fine)."""
    if not isinstance(value, str):
        raise LocalProtocolError(f"{name} must be a str, not {type(value).__name__}")
    if "\r" in value or "\n" in value or "\x00" in value:
        raise LocalProtocolError(f"{name} must not contain CR, LF or NUL")
    return value


#: The statuses whose ``Retry-After`` is kept: 503 (RFC 9110 section 10.2.3)
#: and 429 (RFC 6585 section 4), the answers a client waits on and retries.
RETRY_AFTER_STATUSES = frozenset({429, 503})

#: The longest ``Retry-After`` value kept, in characters: an HTTP-date is 29
#: and a sane delay a few digits, so anything longer is no valid value (and
#: an error carries no unbounded server text).
MAX_RETRY_AFTER_LENGTH = 64


def header_text(value: str | bytes) -> str:
    """A header name or value as text (bytes are latin-1, as HTTP's are)."""
    return value.decode("latin-1") if isinstance(value, (bytes, bytearray)) else value
