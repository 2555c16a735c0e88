"""Server-sent events: the event the parser dispatches.

Its own module because the parser, the chat machine, the cassettes and the
testing strategies all build or read it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import repeat, starmap
from typing import NamedTuple

from .._errors import LocalProtocolError

__all__ = ["SSEEvent"]


class _SSEEventFields(NamedTuple):
    event: str
    data: str
    id: str
    retry: int | None


class SSEEvent(_SSEEventFields):
    """One dispatched server-sent event.  Immutable.

    * ``event``: the event type; ``"message"`` when the block gave none (or an
      empty one).
    * ``data``: the ``data`` lines joined by LF (the trailing LF removed).
    * ``id``: the last event ID string at dispatch.  It persists across events
      until an ``id`` field changes it, as the standard says.
    * ``retry``: the reconnection time (ms) set by a valid ``retry`` field since
      the previous dispatched event, else ``None``.  The parser's own
      ``retry`` attribute holds the stream-wide current value.

    It is a ``NamedTuple`` because one is built per event on the hot path:
    the parser builds them with ``tuple.__new__`` (about 9 times cheaper than
    a frozen dataclass), while this constructor validates what a caller gives.
    """

    __slots__ = ()

    def __new__(
        cls,
        event: str = "message",
        data: str = "",
        id: str = "",
        retry: int | None = None,
    ) -> SSEEvent:
        for name, value in (("event", event), ("data", data), ("id", id)):
            if not isinstance(value, str):
                raise TypeError(f"SSEEvent.{name} must be a str, not {type(value).__name__}")
        if "\r" in event or "\n" in event:
            raise LocalProtocolError("SSEEvent.event must not contain CR or LF")
        if "\r" in id or "\n" in id or "\x00" in id:
            raise LocalProtocolError("SSEEvent.id must not contain CR, LF or NUL")
        if retry is not None and (
            not isinstance(retry, int) or isinstance(retry, bool) or retry < 0
        ):
            raise LocalProtocolError(f"SSEEvent.retry must be a non-negative int, not {retry!r}")
        return tuple.__new__(cls, (event, data, id, retry))


# The hot path builds events without re-validating what the parser itself
# produced: tuple.__new__(SSEEvent, (event, data, id, retry)).
_new_event = tuple.__new__


def _dispatch(event_type: str, data: list[str], last_id: str, retry: int | None) -> SSEEvent:
    """The one place a dispatched event is built (runs of simple events are
    built in bulk, the same events: see :func:`_events`).

    spec: "3. If the data buffer's last character is a U+000A LINE FEED (LF)
    character, then remove the last character" -- the join does: the buffer
    is kept as its lines.  "Initialize event's type attribute to "message"
    ... If the event type buffer has a value other than the empty string,
    change the type of the newly created event to equal the value of the
    event type buffer."
    """
    return _new_event(
        SSEEvent,
        (event_type or "message", data[0] if len(data) == 1 else "\n".join(data), last_id, retry),
    )


def _events(fields: Iterable[tuple[str, str, str, int | None]]) -> Iterable[SSEEvent]:
    """An event for each ``(event, data, id, retry)``, built in C.

    ``starmap`` hands ``tuple.__new__`` the pair that ``zip`` made (and
    reuses), where ``map`` would pack a new argument tuple for each event: a
    short-lived object less per event.
    """
    return starmap(_new_event, zip(repeat(SSEEvent), fields))  # noqa: RUF058 (see above)


# Endless repeats hold no state (each next() gives the same object, forever),
# so one of each serves every run: three objects fewer to build per read.
_CLASS = repeat(SSEEvent)
_MESSAGE = repeat("message")
_NO_RETRY = repeat(None)


def _message_events(values: list[str], last_id: str) -> Iterator[SSEEvent]:
    """The events of a run of simple blocks (see ``_blocks.simple_run``), one
    per value: type "message", the last event ID string, no retry."""
    fields = zip(_MESSAGE, values, repeat(last_id), _NO_RETRY)
    # (_CLASS never ends: strict= has nothing to check.)
    return starmap(_new_event, zip(_CLASS, fields))  # noqa: B905, RUF058 (see _events)


def _message_list(values: list[str], last_id: str) -> list[SSEEvent]:
    """:func:`_message_events`, as a list: built in C when there are several
    (a Python step per event costs more), one alone directly (the C
    iterators cost more to set up than they save)."""
    if len(values) == 1:
        return [_new_event(SSEEvent, ("message", values[0], last_id, None))]
    return list(_message_events(values, last_id))
