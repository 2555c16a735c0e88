"""What a chat stream shows its reader: shared by the async and blocking streams."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from operator import itemgetter
from typing import Literal

from gptalk_proto import ChatDone, ChatEvent, ContentRewritten, TextDelta, TextRewritten

from ._retry import RetryState

__all__ = ["Messages", "Progress", "RewritePolicy"]

Messages = str | Sequence[Mapping[str, str]]
RewritePolicy = Literal["raise", "ignore"]

# Returned by Progress.take for events the reader does not see.
SKIP = object()

# A list of TextDelta events only, as Progress.take_all tells it (the set of
# their types), and a TextDelta's text by index (its one field), in C.
_DELTAS = {TextDelta}
_TEXT = itemgetter(0)


class Progress:
    """Turns events into what the reader gets, and keeps the reply so far.

    With ``deltas`` the reader gets ``str`` deltas; a rewrite raises
    :class:`~gptalk_proto.ContentRewritten` (``on_rewrite="raise"``) or is
    absorbed (``"ignore"``).  Without, the reader gets every event.
    """

    __slots__ = ("_deltas", "_on_rewrite", "_pieces", "done", "state")

    def __init__(self, state: RetryState, *, deltas: bool, on_rewrite: RewritePolicy) -> None:
        if on_rewrite not in ("raise", "ignore"):
            raise ValueError("on_rewrite must be 'raise' or 'ignore'")
        self.state = state
        self._deltas = deltas
        self._on_rewrite = on_rewrite
        self._pieces: list[str] = []
        self.done = False

    @property
    def text(self) -> str:
        """The reply so far."""
        if len(self._pieces) > 1:
            self._pieces[:] = ["".join(self._pieces)]
        return self._pieces[0] if self._pieces else ""

    def deltas_taken(self) -> list[str] | None:
        """For a reader of deltas, the list a ``TextDelta``'s text is appended
        to (all ``take`` does for one, whose text the reader then gets); else
        None."""
        return self._pieces if self._deltas else None

    def take_all(self, events: list[ChatEvent]) -> None:
        """What :meth:`take` does for each of ``events``, for a reader who is
        handed none of them (a ``TextDelta``, the common event, without a
        call of its own)."""
        pieces = self._pieces
        if set(map(type, events)) == _DELTAS:
            # A read's events are nearly always deltas only: their texts in C.
            pieces += map(_TEXT, events)
            return
        for event in events:
            self.take(event)

    def take(self, event: ChatEvent) -> object:
        """What the reader gets for ``event`` (``SKIP`` for nothing)."""
        kind = type(event)
        if kind is TextDelta:
            self._pieces.append(event.text)  # type: ignore[union-attr]
            return event.text if self._deltas else event  # type: ignore[union-attr]
        if kind is TextRewritten:
            previous = self.text
            self._pieces[:] = [event.text]  # type: ignore[union-attr]
            if self._deltas and self._on_rewrite == "raise":
                raise ContentRewritten(event.text, previous)  # type: ignore[union-attr]
        elif kind is ChatDone:
            self.done = True
            self._pieces[:] = [event.text]  # type: ignore[union-attr]
        return SKIP if self._deltas else event
