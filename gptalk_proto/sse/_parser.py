"""Server-sent events: the parser.

This follows the WHATWG HTML standard, section "Server-sent events",
subsections "Parsing an event stream" and "Interpreting an event stream".
Quotations from the standard are marked with ``spec:``.

How it is laid out, and why:

* Bytes are split into lines *before* decoding.  UTF-8 never uses the bytes
  0x0A or 0x0D inside a multi-byte sequence, so cutting at CR and LF first and
  decoding whole lines gives exactly what decoding the whole stream and then
  cutting would give, replacement characters included.  Keeping the unfinished
  line as bytes lets the line cap count bytes, and lets a character split
  across chunks wait for its other half without an incremental decoder.
* Runs of simple blocks (one "data: " line, a blank line), what nearly every
  stream is, are recognised by counting, decoded at once, split once and
  built in bulk: no Python step per line.  Long lines are decoded one by one
  straight from the buffer; other lines go through the spec's loop.
* An unfinished line is kept as a list of chunks and joined once, when its
  line end arrives, so a multi-megabyte line fed in small chunks costs linear
  time (no rescans of what was already searched).
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import chain, repeat
from typing import NoReturn

from .._errors import (
    LocalProtocolError,
    RemoteProtocolError,
    SSEEventTooLarge,
    SSELineTooLong,
    SSESizeError,
)
from ._blocks import simple_run, text_region
from ._checked import over_line_cap, process_checked
from ._event import SSEEvent, _dispatch, _events, _message_events
from ._fields import process_lines
from ._growing import GrowingValues
from ._lines import EXTENDS_LONG_LINE as _EXTENDS_LONG_LINE
from ._lines import LONG_LINE, MIXED_FROM, crlf_lines, lf_lines, long_lines_from, to_lf
from ._lines import VIEW_FROM as _VIEW_FROM
from ._long import complete_line, feed_long, process_long

__all__ = [
    "DEFAULT_MAX_EVENT_SIZE",
    "DEFAULT_MAX_LINE_SIZE",
    "SSEParser",
]

#: Default cap on one line, in bytes, without its line end.  GPTalk resends the
#: whole reply so far in every event, JSON-escaped (up to 6 bytes per
#: character with ``\\uXXXX`` escapes), so a reply of several MB makes lines of
#: tens of MB; 32 MiB leaves room for that and still bounds memory.
DEFAULT_MAX_LINE_SIZE = 32 * 1024 * 1024

#: Default cap on one event's data buffer, in characters (the ``data`` lines
#: joined by LF).  The same reasoning as the line cap.
DEFAULT_MAX_EVENT_SIZE = 32 * 1024 * 1024

# spec: "The UTF-8 decode algorithm strips one leading UTF-8 Byte Order Mark
# (BOM), if any."  Only at the very start of the stream.
_BOM = b"\xef\xbb\xbf"


#: An unfinished line is joined with the next chunk when the two together
#: are at most this many bytes; otherwise the line is completed alone and the
#: chunk parsed in place (a client reads up to 256 KiB at once: copying each
#: read to join a few bytes to it was a tenth of its CPU).
_JOIN_BELOW = 8192

#: A pending event's data lines are joined into one string past this many,
#: when they average under _LINE_COST characters: a str and a pointer per line
#: (~60 bytes) let "data: ab" lines hold 20 bytes per capped character.  Each
#: line adds a character (its LF), so the copies are linear in the event.
_JOIN_DATA_FROM = 256
_LINE_COST = 32


class SSEParser:
    """An incremental, spec-exact ``text/event-stream`` parser.  Bytes in, events out.

    >>> p = SSEParser()
    >>> p.feed(b"data: hel")
    []
    >>> p.feed(b"lo\\r\\n\\r\\n")
    [SSEEvent(event='message', data='hello', id='', retry=None)]

    ``feed(data)`` returns the events that chunk completed, as a list;
    ``feed_iter(data)`` parses the chunk the same way and hands over the same
    events as an iterator, built as they are taken (cheaper for many small
    events handled one at a time); ``close()`` ends the stream (spec: "If the
    file ends in the middle of an event, before the final empty line, the
    incomplete event is not dispatched").

    Attributes:
        last_event_id: the last event ID string (set at each dispatch).
        retry: the reconnection time in ms set by the last valid ``retry``
            field, or ``None``.

    Caps: ``max_line_size`` (bytes in one line, line end excluded) and
    ``max_event_size`` (characters in one event's data buffer).  Going over
    either raises a :class:`~gptalk_proto.SSESizeError` subclass; memory stays
    within the cap plus one chunk.  After any error the parser is unusable.

    ``growing_tail``: a speed hint for streams whose data values grow, each
    one the previous with text inserted before the previous one's last
    ``growing_tail`` bytes (cumulative replies: a JSON object resent whole
    with more text before its closing bytes).  A long value that starts with
    all but those bytes of the previous one is then decoded only from where
    it differs, when the bytes prove the result exact: the tail is ASCII and
    the shared part ends on a whole UTF-8 sequence.  Events are the same with
    or without it (a differential test holds it to that); 0, the default,
    turns it off.
    """

    __slots__ = (
        "_closed",
        "_counted",
        "_counted_list",
        "_data",
        "_data_size",
        "_error",
        "_event_retry",
        "_event_type",
        "_grower",
        "_id_buffer",
        "_lazy",
        "_long_line",
        "_long_run",
        "_pending",
        "_pending_len",
        "_run",
        "_skip_lf",
        "_start",
        "growing_tail",
        "last_event_id",
        "max_event_size",
        "max_line_size",
        "retry",
    )

    def __init__(
        self,
        *,
        max_line_size: int = DEFAULT_MAX_LINE_SIZE,
        max_event_size: int = DEFAULT_MAX_EVENT_SIZE,
        last_event_id: str = "",
        growing_tail: int = 0,
    ) -> None:
        if max_line_size < 1 or max_event_size < 1:
            raise LocalProtocolError("SSE caps must be positive")
        self.growing_tail = growing_tail
        self._grower = GrowingValues(growing_tail) if growing_tail else None
        if "\x00" in last_event_id or "\r" in last_event_id or "\n" in last_event_id:
            raise LocalProtocolError("last_event_id must not contain CR, LF or NUL")
        self.max_line_size = max_line_size
        self.max_event_size = max_event_size
        self.last_event_id = last_event_id
        self.retry: int | None = None
        # spec: "a data buffer, an event type buffer, and a last event ID buffer
        # ... must be initialized to the empty string."  The data buffer is kept
        # as its lines; "value + LF" per line with the last LF removed is
        # exactly "\n".join(lines), and a non-empty list is a non-empty buffer.
        self._data: list[str] = []
        # The data buffer's length between chunks, and which list and how many
        # of its lines that counts (see _account).
        self._data_size = 0
        self._counted = 0
        self._counted_list: list[str] | None = None
        self._event_type = ""
        self._id_buffer = last_event_id
        self._event_retry: int | None = None
        # The unfinished last line, as raw byte chunks, and its length.
        self._pending: list[bytes | memoryview] = []
        self._pending_len = 0
        # The previous chunk ended in CR: an LF starting this one is the second
        # half of a CRLF, not a line end of its own.
        self._skip_lf = False
        # Bytes held at the very start while they could still be a split BOM.
        self._start: bytes | None = b""
        self._closed = False
        self._error: RemoteProtocolError | None = None
        # feed_iter's and feed_values' call of feed: a run of simple blocks
        # that ends the chunk is left unbuilt, its values and event ID kept in
        # _run.
        self._lazy = False
        self._run: tuple[list[str], str] | None = None
        # The last chunk was all blocks of long data lines (see feed_long):
        # the next goes there too, even with little or nothing pending (a
        # read of 4 KiB leaves a few bytes of the next line as often as not).
        # Only feed_long sets it; feed's own way, close() and the failures
        # (_fail_line, _fail_event) clear it.
        self._long_run = False
        # The lines that go one at a time (see _within_line_cap): LONG_LINE
        # bytes and more, or EXTENDS_LONG_LINE when the grower hands over
        # Extensions at the stream's first bytes (the chat's parser: told
        # with the response's head), fixed then, before any line is read, so
        # that no per-line test pays for the choice.  A grower told later
        # keeps LONG_LINE's lines (the events are the same either way).
        self._long_line = LONG_LINE

    # -- public API -----------------------------------------------------------

    def feed(self, data: bytes) -> list[SSEEvent]:
        """Parse one chunk; return the events it completed (maybe none)."""
        if self._closed:
            raise LocalProtocolError("feed() called after close()")
        if self._error is not None:
            raise RemoteProtocolError(
                f"the stream is unusable after an earlier error: {self._error}"
            )
        if not data:
            return []
        if type(data) is not bytes:
            data = bytes(data)
        if self._long_run or self._pending_len >= self._long_line:
            # A chunk of a stream of long lines (see feed_long), unless
            # feed_iter or feed_values just offered it there (_lazy: its bytes
            # chunks; others are rare).
            if not self._lazy and (done := feed_long(self, data)) is not None:
                return done
            self._long_run = False  # feed's own way from here
        if self._start is not None:
            data = self._start + data
            if len(data) < 3 and _BOM.startswith(data):
                self._start = data  # could still become a BOM: wait for more
                return []
            self._start = None
            if self._grower is not None and self._grower.extends:
                self._long_line = _EXTENDS_LONG_LINE  # (see _long_line)
            if data.startswith(_BOM):
                data = data[3:]
        if self._skip_lf and data:
            self._skip_lf = False
            if data[0] == 0x0A:
                data = data[1:]
        # spec: lines end with "a U+000D CARRIAGE RETURN U+000A LINE FEED (CRLF)
        # character pair, a single U+000A LINE FEED (LF) character not preceded
        # by a U+000D CARRIAGE RETURN (CR) character, and a single U+000D
        # CARRIAGE RETURN (CR) character not followed by a U+000A LINE FEED (LF)
        # character".  Normalise all three to LF; a CR that ends the chunk ends
        # its line now, and an LF opening the next chunk is then swallowed.
        end = data.rfind(b"\n")
        crlf = False
        if 0x0D in data:  # (b"\r" in data first tries it as an int, and fails)
            # A chunk whose last line end is a CRLF, with no CR after it, is
            # read as it came: a region of simple blocks proves its own line
            # ends (see simple_run) and any other region is normalised on its
            # own (see _interpret).  Any other chunk is normalised now.
            if data[-1] == 0x0D:
                # The CR ends its line now: as the CRLF it may be the first
                # half of (an LF opening the next chunk is then swallowed).
                self._skip_lf = True
                data += b"\n"
                end = len(data) - 1
            crlf = end > 0 and data[end - 1] == 0x0D and data.find(b"\r", end + 1) < 0
            if not crlf:
                data = to_lf(data)
                end = data.rfind(b"\n")
        if end < 0:
            if data:
                self._pending.append(data)
                self._pending_len += len(data)
                if self._pending_len > self.max_line_size:
                    self._fail_line(self._pending_len, [])
            return []
        events: list[SSEEvent] = []
        start = 0
        # A long unfinished line is kept as a view of this chunk, not a copy:
        # it is copied once, when its line end arrives (the view holds this
        # chunk, one chunk, in memory until then).
        short_rest = len(data) - end <= _VIEW_FROM
        rest = data[end + 1 :] if short_rest else memoryview(data)[end + 1 :]
        pending = self._pending
        if pending and self._pending_len + end <= _JOIN_BELOW:
            # A short unfinished line and a short chunk: join them (one small
            # copy, of the whole chunk when what follows its last line end is
            # short), so the chunk is parsed as one piece.
            pending.append(data if short_rest else data[: end + 1])
            end += self._pending_len
            data = b"".join(pending)
        elif pending:
            # Otherwise: the line completed alone, the chunk's lines parsed in place.
            first = data.find(b"\n")
            pending.append(data[:first] if first <= _VIEW_FROM else memoryview(data)[:first])
            self._pending = []
            events, start = complete_line(
                self, b"".join(pending), data, first, end, crlf=crlf, lazy=self._lazy
            )
        self._pending = [rest] if rest else []
        self._pending_len = rest_len = len(rest)
        # In a CRLF chunk the region stops before its last line end's CR (what
        # _interpret does, without the call, with no events before, within the cap).
        if start > end:
            pass
        elif events or end - crlf - start > self.max_line_size:
            events += self._interpret(data, start, end - crlf, events, crlf, lazy=self._lazy)
        else:
            events = self._within_line_cap(data, start, end - crlf, crlf, self._lazy)
        if self._data:
            self._account()
        else:
            self._data_size = 0  # what _account gives then, without the call
        if rest_len > self.max_line_size:
            self._fail_line(rest_len, events)
        return events

    def feed_iter(self, data: bytes) -> Iterator[SSEEvent]:
        """Parse one chunk now, as :meth:`feed` does; return an iterator of
        the same events, built as they are taken.

        The parser's state advances and every error is raised in this call,
        exactly as with :meth:`feed`; only the events are built later, one by
        one as the iterator is drained.  Each iterator holds only what its own
        chunk gave: draining it late, or not at all, changes nothing else.

        Use it to handle events one at a time::

            for event in parser.feed_iter(chunk):
                handle(event)

        Many small events then cost less than with ``feed``: each can be freed
        before the next is built, where a list keeps them all alive (and the
        cyclic garbage collector visits them again and again as it grows).
        """
        # A long line's chunk: feed_long, without feed's steps (closed: none
        # pending; errors and close() clear _long_run).  Its events are built
        # there, not left lazy: a chunk of long lines holds one or two, which
        # cost less built at once than through _message_events' setup
        # (callgrind, lazy here: 4.1 % more instructions for the cumulative
        # 8 KB parse at 32 characters an event, 2.2 % at 4).
        if (
            (self._long_run or (self._pending_len >= self._long_line and self._error is None))
            and type(data) is bytes
            and data
            and (done := feed_long(self, data)) is not None
        ):
            return iter(done)
        self._lazy = True
        try:
            events = self.feed(data)
        finally:
            self._lazy = False
        if self._run is None:
            return iter(events)
        values, last_id = self._run
        self._run = None
        built = _message_events(values, last_id)
        return chain(events, built) if events else built

    def feed_values(self, data: bytes) -> tuple[list[SSEEvent], list[str]]:
        """Parse one chunk now, as :meth:`feed` does, for a reader of plain
        messages' data: ``(events, values)``, where each value stands for an
        event that follows ``events``, of type "message" with that data,
        :attr:`last_event_id` and no retry.

        The same events as :meth:`feed` gives, in the same order, with the
        same state after and the same errors (an error's ``events`` are built
        whole).  Only the run of simple blocks that ends the chunk, nearly
        every event of a stream, is handed over as its values: a reader that
        wants the data alone then has no event built for them, to take apart
        again.
        """
        # As feed_iter, but a long line's chunk goes to feed_long lazily too:
        # its run is left unbuilt there as well.
        self._lazy = True
        try:
            if (
                (self._long_run or (self._pending_len >= self._long_line and self._error is None))
                and type(data) is bytes
                and data
                and (done := feed_long(self, data)) is not None
            ):
                events = done
            else:
                events = self.feed(data)
        finally:
            self._lazy = False
        run = self._run
        if run is None:
            return events, []
        self._run = None
        return events, run[0]

    def close(self) -> list[SSEEvent]:
        """End the stream.  Pending data is discarded; nothing is dispatched.

        Returns an empty list (for symmetry with :meth:`feed`).  Feeding after
        this raises :class:`~gptalk_proto.LocalProtocolError`.
        """
        self._closed = True
        self._long_run = False
        self._grower = None  # and the buffer its last value's view holds
        self._pending = []
        self._pending_len = 0
        self._data = []
        self._data_size = 0
        self._start = None
        return []

    # -- internals --------------------------------------------------------------

    def _interpret(
        self,
        buf: bytes,
        start: int,
        end: int,
        before: list[SSEEvent] | None = None,
        crlf: bool = False,
        *,
        lazy: bool = False,
    ) -> list[SSEEvent]:
        """Interpret ``buf[start:end]``: complete lines, without the last line
        end.  ``before`` are the events this feed already produced (an error
        carries them along).  ``crlf``: the region's line ends are not
        normalised (see :meth:`feed`).  ``lazy``: see :meth:`_within_line_cap`."""
        try:
            if end - start > self.max_line_size:
                if crlf:
                    buf = to_lf(buf[start:end])
                    start, end = 0, len(buf)
                return over_line_cap(self, buf[start:end])
            return self._within_line_cap(buf, start, end, crlf, lazy)
        except SSESizeError as exc:
            exc.events[:0] = list(before or [])
            raise

    def _within_line_cap(
        self, buf: bytes, start: int, end: int, crlf: bool = False, lazy: bool = False
    ) -> list[SSEEvent]:
        """:meth:`_interpret` for a region no line of which is over the cap.
        ``lazy``: the region ends the chunk, and a run of simple blocks is left
        in ``_run`` for :meth:`feed_iter` (the events before it are returned)."""
        # Lines can add at most len(head) + 1 characters to the data buffer
        # (each line gives at most its length plus the LF the spec appends, and
        # a character takes at least a byte).  When even that stays within the
        # cap, no line needs a check and the fast paths run.  Otherwise every
        # line is checked, in stream order, so the error, the events before it
        # and the state after it are the same however the stream was cut.
        if self._data_size + (end - start) > self.max_event_size:
            text = str(memoryview(buf)[start:end], "utf-8", "replace")
            return process_checked(self, (crlf_lines if crlf else lf_lines)(text))
        # Long lines (cumulative replies run to kilobytes a line): decode each
        # line straight from the buffer, instead of decoding everything and then
        # copying it again into the pieces of a split.  A stream's lines are
        # alike, so its first line decides.
        line = buf.find(b"\n", start, end)
        if line < 0 or line - start >= self._long_line:
            return process_long(self, buf, start, end, crlf, lazy=lazy)
        if end - start > MIXED_FROM:
            cut = long_lines_from(buf, start, end, self._long_line)
            if cut < end and (not crlf or buf[cut - 2] == 0x0D):
                # Short lines, then long ones (a read of a cumulative reply):
                # each part the way that suits it, one after the other (the
                # part before the cut ends without its last line end).
                events = self._within_line_cap(buf, start, cut - 1 - crlf, crlf)
                return events + process_long(self, buf, cut, end, crlf, lazy=lazy)
        # A run of simple blocks (see simple_run), when no event or retry field
        # is pending and no data line would continue a pending event: its events
        # are built in C, each what the line-by-line rules give (type "message",
        # the last event ID, no retry: no id line is in such a region).
        if (
            self._event_type == ""
            and self._event_retry is None
            and (run := simple_run(buf, start, end, crlf, line)) is not None
            and (run[0] or not self._data)
        ):
            opened, values, waiting = run
            # spec: dispatch, step 1: "Set the last event ID string of the event
            # source to the value of the last event ID buffer."  (Only a blank
            # line dispatches.)
            last_id = self._id_buffer
            if opened or values:
                self.last_event_id = last_id
            events = [_dispatch("", self._data, last_id, None)] if opened and self._data else []
            self._data = [] if waiting is None else [waiting]
            if lazy:
                self._run = (values, last_id)
            else:
                events += _events(zip(repeat("message"), values, repeat(last_id), repeat(None)))
            return events
        return text_region(self, str(memoryview(buf)[start:end], "utf-8", "replace"), crlf)

    def _account(self) -> None:
        # Keep _data_size (the data buffer's length, one LF per line) exact for
        # the next chunk, counting each data line once: a dispatch replaces the
        # list, so a new list means all of it is new.
        data = self._data
        if not data:
            self._data_size = 0
            self._counted = 0
        elif self._counted_list is not data:
            self._data_size = sum(map(len, data)) + len(data)
            self._counted = len(data)
        else:
            new = data[self._counted :]
            self._data_size += sum(map(len, new)) + len(new)
            self._counted = len(data)
        if len(data) > _JOIN_DATA_FROM and len(data) * _LINE_COST > self._data_size:
            # Joined by LF as the dispatch joins them: the size is unchanged.
            data = self._data = ["\n".join(data)]
            self._counted = 1
        self._counted_list = data

    # The spec's rules for complete lines, one field at a time (see _fields).
    _process = process_lines

    def _fail_line(self, size: int, events: list[SSEEvent]) -> NoReturn:
        if self._run is not None:  # feed_iter's run: its events came before
            events += _message_events(*self._run)
            self._run = None
        self._long_run = False
        self._error = SSELineTooLong(
            f"SSE line of {size} bytes or more exceeds max_line_size={self.max_line_size}",
            limit=self.max_line_size,
            events=events,
        )
        self._pending = []
        raise self._error

    def _fail_event(self, events: list[SSEEvent], size: int) -> NoReturn:
        self._long_run = False
        self._error = SSEEventTooLarge(
            f"SSE event data of {size} characters exceeds max_event_size={self.max_event_size}",
            limit=self.max_event_size,
            events=events,
        )
        self._data = []
        raise self._error
