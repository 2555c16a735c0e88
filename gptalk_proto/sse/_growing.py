"""Server-sent events: decoding data values that grow (``SSEParser(growing_tail=...)``).

Protocol-neutral: some streams resend a value whole with more inserted near
its end (cumulative replies, each a JSON object with the text so far), and
decoding each of them in full costs time quadratic in the reply.  This keeps
the previous value's text and decodes only what is new, when the bytes prove
that exact.  What the tail is (for a JSON object, its closing bytes) is the
caller's knowledge, not the parser's.
"""

from __future__ import annotations

from .._errors import LocalProtocolError
from ._event import SSEEvent
from ._lines import EXTENDS_LONG_LINE

__all__ = ["MAX_GROWING_TAIL", "MAX_LINKS", "Extension", "GrowingValues", "whole", "whole_data"]

#: The largest ``growing_tail``: a hint about a few closing bytes, not a cap.
MAX_GROWING_TAIL = 64

#: Values shorter than this many bytes are decoded whole: decoding them costs
#: less than the Python steps that prove a reuse exact.
_REUSE_FROM = 2048

#: _REUSE_FROM of a grower that hands over Extensions (see hand_extensions):
#: such a value is never joined, so the steps that prove a reuse pay for
#: themselves on much shorter values (measured with the parser's
#: EXTENDS_LONG_LINE, which says by how much).  The same as that: below it,
#: the parser's lines do not reach the grower one by one.
EXTENDS_REUSE_FROM = EXTENDS_LONG_LINE

#: The pieces the previous text is kept in (see GrowingValues.decode) are
#: joined into one when there are more than this many.
_MAX_PIECES = 32

#: Cap on the proofs kept for a consumer (see GrowingValues.keep_links): the
#: values of one read's events, which it takes right after the read (a value
#: decoded by reuse is over _REUSE_FROM bytes, so a read of 256 KiB, asyncio's
#: largest, holds at most 128; a grower handing over Extensions, whose reused
#: values are Extensions with no proof kept, keeps one only for a value it
#: joins, rare); older ones are dropped (their consumer then compares the
#: text itself), and at most this many values kept alive.
MAX_LINKS = 128


class Extension:
    """A long value that the bytes proved extends the one before, handed over
    without its text joined (see :meth:`GrowingValues.hand_extensions`).

    ``before``: the value handed over just before it (a ``str`` or an
    Extension); the value is all of ``before`` but its last ``len(tail)``
    characters, then ``new``, then ``tail`` (its last bytes, ASCII, so one
    character each).  ``parts[:count]``: the value's text less its tail, in
    pieces (the grower's list, which only grows past ``count``), joined by
    :meth:`text` for a consumer that needs all of it.  The consumer sets
    ``before`` to None once it took the value: else each value would keep
    every one before it alive (their pieces too) for the whole stream.
    """

    __slots__ = ("before", "count", "new", "parts", "tail")

    # No __init__: the grower sets the fields (one object per event; a class
    # with no __init__ or __new__ of its own is built by the type's own C
    # steps, cheaper than object.__new__'s wrapper or an __init__ frame).
    before: str | Extension | None
    count: int
    new: str
    parts: list[str]
    tail: bytes

    def text(self) -> str:
        """The whole value (one copy of it)."""
        return "".join(self.parts[: self.count]) + self.tail.decode("ascii")


def whole_data(event: SSEEvent) -> SSEEvent:
    """``event`` with its whole data: an Extension's text joined."""
    data: object = event.data
    if isinstance(data, Extension):
        return event._replace(data=data.text())
    return event


def whole(value: str) -> str:
    """A value from :meth:`GrowingValues.decode` as text (an Extension's
    joined)."""
    given: object = value  # (typed str for the parser's sake: see decode)
    return given.text() if isinstance(given, Extension) else value


class GrowingValues:
    """The decoding of successive long data values of one stream."""

    __slots__ = ("_last", "_links", "_previous", "_reuse_from", "extends", "tail")

    def __init__(self, tail: int) -> None:
        if not 0 < tail <= MAX_GROWING_TAIL:
            raise LocalProtocolError(f"growing_tail must be 0 to {MAX_GROWING_TAIL}")
        self.tail = tail
        # The last value's bytes without its tail (a view of the buffer it was
        # parsed from: no copy, and the buffer is at most a line, within the
        # parser's cap, or one chunk), and their text, kept as pieces: a
        # long text followed by the short ones each later value added.
        self._previous: tuple[memoryview, list[str]] | None = None
        # The value _previous was taken from, and the proofs kept for a
        # consumer (None until one asks: see keep_links).
        self._last: str | Extension | None = None
        self._links: list[tuple[str, str | Extension]] | None = None
        # Whether a value that ends an event may be handed over as an
        # Extension (see hand_extensions); read by the parser's long-line
        # loops (see process_long), set only by hand_extensions.
        self.extends = False
        # Values shorter than this are decoded whole and not kept (see
        # _REUSE_FROM); set only by hand_extensions.
        self._reuse_from = _REUSE_FROM

    def hand_extensions(self) -> None:
        """From now on, a long data value that the bytes prove extends the one
        before is handed over as an :class:`Extension`, its text not joined:
        an event whose data is that one line carries it as its ``data``.  For
        the one consumer of a stream's events that needs only what each value
        added (the GPTalk chat, whose content decoder takes them).  A data
        buffer of several lines gets the text; every value of a parser not
        told this is ``str``.  Values from EXTENDS_REUSE_FROM bytes on are
        reused from then on (see there), and a parser told this before its
        first bytes sends its lines from that length on one by one (see
        SSEParser._long_line)."""
        self.extends = True
        self._reuse_from = EXTENDS_REUSE_FROM

    def keep_links(self) -> list[tuple[str, str | Extension]]:
        """From now on, keep ``(value, before)`` for each value decoded by
        reuse: ``value`` starts with all of ``before`` but its last ``tail``
        characters (the bytes proved it).  A consumer that compares values
        (the GPTalk content decoder) takes these proofs, in order, instead of
        comparing the text again.  At most MAX_LINKS are kept (the oldest go
        first), so at most that many values are kept alive.  (A list the
        consumer takes from the front: an empty one holds no block, where a
        deque's is 528 bytes, one per chat of a client holding many.)"""
        if self._links is None:
            self._links = []
        return self._links

    def decode_many(self, head: bytes, view: memoryview, spans: list[int]) -> list[str]:
        """:meth:`decode` for each value ``view[start:stop]`` of ``head``,
        ``spans`` holding ``start, stop`` of each in turn (the values of one
        chunk's events, in order): the same values, and the same state after.

        ``spans`` is the caller's, one read's events at most (bounded by the
        read), not kept.  (The common run of values that extend the one
        before goes by :meth:`decode_blocks` first: what is left here is
        rare, and a loop of its own for them, beside decode's, measured no
        faster.)
        """
        pairs = iter(spans)
        decode = self.decode
        return [decode(head, view, start, stop) for start, stop in zip(pairs, pairs)]  # noqa: B905 (pairs of one iterator)

    def decode_blocks(
        self, head: bytes, view: memoryview, start: int, size: int, *, crlf: bool, cap: int
    ) -> tuple[list[str], int]:
        """The parser's common blocks from ``head[start]`` on, "data: V", a
        line end and a blank line, taken by the rules of
        :func:`~gptalk_proto.sse._long.process_long`'s first loop (the region
        ``head[start:size]``, ``crlf`` as there; and :func:`feed_long`'s,
        ``size`` its last line end, with no line over ``cap`` bytes before
        its LF), as long as each value V is
        one :meth:`decode` hands over as an Extension: their values (the
        same, and the same state after) and where the blocks taken end.
        Nothing is taken of the first block that is not one: the caller's
        loop goes on there.

        The blocks' values are lines' (``crlf``: lines whose first CR is the
        one before their LF), so a value's bytes hold no CR and no LF (a
        line ends at either), and neither do those of the previous value
        kept here.  So once a line's bytes after "data: " are proved to
        start with those (the compare decode makes), its LF, and with
        ``crlf`` a lone CR, are searched for only in the bytes after them:
        a long reply's line is scanned once per event (the compare), where
        the line end's search, the CR's and the compare scanned it three
        times.  Only after :meth:`hand_extensions`, with a previous value
        kept; ``(values, start)`` as given otherwise.  (A value extending
        a kept one is EXTENDS_REUSE_FROM bytes or more, so its line is a
        long one, as feed_long takes only: see EXTENDS_LONG_LINE.)
        """
        values: list[str] = []
        previous = self._previous
        last = self._last
        if previous is None or last is None or not self.extends:
            return values, start
        stem, pieces = previous
        # (decode's compare, first: with it, no CR and no LF before
        # ``shared``.  Past ``size`` nothing below is found.)
        if head[start : start + 6] != b"data: " or not head.startswith(stem, start + 6):
            return values, start
        shared = start + 6 + len(stem)
        tail = self.tail
        find = head.find
        append = values.append
        try:
            while (end := find(b"\n", shared, size)) >= 0 and end - start <= cap:
                after = end + 1
                if crlf:
                    stop = end - 1
                    if head[stop] != 0x0D or (
                        after < size and (after + 2 > size or head[after : after + 2] != b"\r\n")
                    ):
                        break  # no CRLF, or no blank line next
                    next_start = after + 2
                else:
                    if after < size and head[after] != 0x0A:
                        break  # no blank line next
                    stop = end
                    next_start = after + 1
                # decode's other tests, and its Extension (see there).
                cut = stop - tail
                if cut < shared or not (ending := head[cut:stop]).isascii():
                    break
                piece = head[shared:cut]
                if crlf and (0x0D in piece or 0x0D in ending):
                    # A lone CR before the line's CRLF (none is before
                    # ``shared``): searched for in the copies just made, at
                    # less than a ranged find's cost (and as an int: a bytes
                    # operand is first tried as one, at an exception's cost).
                    break
                try:
                    new = piece.decode()
                except UnicodeDecodeError:
                    # (Decoded strictly, the piece opened a character: an
                    # empty one is followed by the tail's ASCII.)
                    if head[shared] & 0xC0 == 0x80:
                        break  # a continuation byte
                    new = piece.decode("utf-8", "replace")
                pieces.append(new)
                extension = Extension()  # (its fields: see the class)
                extension.before = last
                extension.new = new
                extension.tail = ending
                extension.parts = pieces
                extension.count = count = len(pieces)
                if count > _MAX_PIECES:
                    # A new list: the Extensions handed over hold this one.
                    pieces = ["".join(pieces)]
                last = extension
                append(extension)  # type: ignore[arg-type]  # (see decode)
                # "data: " and the value less its tail: the next line starts
                # with it when its value extends this one (one compare for
                # both).
                line = view[start:cut]
                start = next_start
                if start > size or not head.startswith(line, start):
                    break
                shared = start + len(line)
        except BaseException:
            # (A MemoryError, say.)  Always exact: the next value is decoded whole.
            self._previous = self._last = None
            raise
        if values:
            self._previous = (line[6:], pieces)
            self._last = last
        return values, start

    def decode(self, head: bytes, view: memoryview, start: int, stop: int) -> str:
        """Decode the long data value ``view[start:stop]``, reusing the previous
        value's text where the bytes prove it exact (see ``growing_tail``).

        After :meth:`hand_extensions`, a value reused so is an
        :class:`Extension` (typed ``str`` for the parser: it places the value
        in an event as it is, and :func:`whole` makes it text wherever it
        goes into a data buffer of several lines).

        When the value starts with the previous one's bytes up to its tail,
        and the byte after those is not a UTF-8 continuation byte, a decoder
        starts a new character there (a sequence the shared bytes left
        unfinished is replaced the same way whether the data ends or another
        character starts): the text is the previous text up to its tail
        plus the rest decoded on its own, joined in one copy.  A reply of N
        bytes then costs O(N) decoding instead of O(N x events).  The text up
        to the tail is the text less ``tail`` characters when the tail's
        bytes are ASCII (one character each); otherwise the next value is
        decoded whole.
        """
        previous = self._previous
        if previous is not None:
            stem, pieces = previous
            # Where the value's bytes past the shared ones start.
            shared = start + len(stem)
            if (
                stop > shared
                and head.startswith(stem, start)
                and head[shared] & 0xC0 != 0x80  # not a continuation byte
            ):
                tail = self.tail
                cut = stop - tail
                last = self._last
                ending = head[cut:stop]  # the tail's bytes (when cut >= shared)
                ascii_tail = cut >= shared and ending.isascii()
                # Handed over unjoined (see hand_extensions): its new text
                # less the tail is decoded alone (the tail's bytes are ASCII,
                # one character each, so the text less the tail is the bytes
                # less the tail decoded, a sequence cut short at ``cut``
                # replaced as where ASCII follows).
                extend = self.extends and last is not None and ascii_tail
                # A bytes copy of the piece and its decode method: a few
                # dozen bytes, where a memoryview and str() of it cost twice
                # the instructions; strict first (the fewest steps), and
                # errors replaced only when there are any.
                piece = head[shared:cut] if extend else head[shared:stop]
                try:
                    new = piece.decode()
                except UnicodeDecodeError:
                    new = piece.decode("utf-8", "replace")
                pieces.append(new)
                if extend:
                    extension = Extension()  # (its fields: see the class)
                    extension.before = last
                    extension.new = new
                    extension.tail = ending
                    extension.parts = pieces
                    extension.count = count = len(pieces)
                    if count > _MAX_PIECES:
                        # A new list: the Extensions handed over hold this one.
                        pieces = ["".join(pieces)]
                    self._previous = (view[start:cut], pieces)
                    self._last = extension
                    return extension  # type: ignore[return-value]
                value = "".join(pieces)
                if last is not None and (links := self._links) is not None:
                    # pieces held the text of _last less its tail: value
                    # starts with it.
                    if len(links) >= MAX_LINKS:
                        del links[0]  # the oldest goes (see MAX_LINKS)
                    links.append((value, last))
                if ascii_tail:
                    # Its tail bytes are ASCII: the text's last tail characters.
                    pieces[-1] = new[:-tail]
                    if len(pieces) > _MAX_PIECES:
                        # (A new list: Extensions handed over may hold this one.)
                        pieces = ["".join(pieces)]
                    self._previous = (view[start:cut], pieces)
                    self._last = value
                else:
                    self._previous = self._last = None
                return value
            self._previous = self._last = None
        # Decoded whole (the first value, one that does not extend the
        # previous, and every ASCII one: the fewest steps for those).
        if stop - start < _REUSE_FROM:
            # (_REUSE_FROM for every grower here: only how the bytes are
            # read; what is kept is decided below, by the grower's own.)
            value = head[start:stop].decode("utf-8", "replace")  # (see simple_run)
        else:
            # Decoded from the view: a long value's bytes are not copied out first.
            value = str(view[start:stop], "utf-8", "replace")
        if (
            stop - start >= self._reuse_from
            # ASCII text decodes about as fast as it copies: nothing to save
            # where the value must be joined, but a value handed over as an
            # Extension is never joined (its bytes compared, not decoded).
            and (self.extends or not value.isascii())
            and head[stop - self.tail : stop].isascii()
        ):
            self._previous = (view[start : stop - self.tail], [value[: len(value) - self.tail]])
            self._last = value
        return value
