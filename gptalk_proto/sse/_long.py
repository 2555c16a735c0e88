"""Server-sent events: the parser's steps for long lines.

Cumulative replies run to kilobytes a line: their values are decoded one by
one straight from the buffer, a data line with the blank line after it makes
an event here, with no list to join, and so does a long line that a chunk
completes, with the chunk's long lines after it.  A chunk of such lines is a
few long copies and a few dozen Python steps per event: the steps are most
of what is left to save (at 16 KiB reads of 8 KB replies, a chunk holds
about two events), so the common blocks take a loop of their own.  Its own
module to keep the parser's under the house's size.  It reads and writes the
parser's state (``self`` is the parser), as a method would.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._event import SSEEvent, _dispatch, _message_events, _message_list, _new_event
from ._growing import whole
from ._lines import VIEW_FROM, to_lf

if TYPE_CHECKING:
    from ._growing import GrowingValues
    from ._parser import SSEParser

__all__ = ["complete_line", "feed_long", "process_long"]


def _data_value(
    grower: GrowingValues | None, buf: bytes, view: memoryview, start: int, stop: int
) -> str:
    """A long data line's value, ``view[start:stop]`` of ``buf``, decoded: by
    the parser's grower where values grow (it reuses the previous value's
    text), else whole (spec: bytes are decoded as UTF-8, errors replaced)."""
    if grower is not None:
        return grower.decode(buf, view, start, stop)
    return str(view[start:stop], "utf-8", "replace")


def process_long(
    self: SSEParser, head: bytes, start: int, size: int, crlf: bool = False, *, lazy: bool = False
) -> list[SSEEvent]:
    """The general loop's rules, for long lines: each data value is decoded
    once, straight from the buffer without its "data: " prefix (one copy,
    where decode-split-slice makes two); a data line and the blank line
    after it make an event here; any other line goes through
    :meth:`_process`.

    ``crlf``: the lines were not normalised (see :meth:`feed`).  A line
    then ends at the CR before its LF, and a CR anywhere else (spec: a
    line end of its own) sends that piece through the general rules.
    ``lazy``: the region ends the chunk; when it is all such blocks, their
    values are left in the parser's ``_run``, their events unbuilt (see
    SSEParser._run).
    """
    view = memoryview(head)
    find = head.find
    events: list[SSEEvent] = []
    data = self._data
    grower = self._grower
    if not (data or self._event_type or self._event_retry is not None):
        # The blocks nearly every stream is made of, "data: V", a line end,
        # a blank line, with nothing pending: each is one event (spec: append
        # V to the empty data buffer, then the blank line dispatches it: type
        # "message", the last event ID buffer, no retry; no id line is among
        # them, so the buffer stays what it is).  Without ``crlf`` the region
        # holds no CR (it is LF-only or was normalised: see feed), so the LF
        # found ends the line; with it, the line must end in CRLF with no
        # other CR in it, and the blank line be CRLF too (or the region's
        # end, which stops before its last line end).  The first line that
        # is anything else goes on through the loop below.
        last_id = self._id_buffer
        values: list[str] = []
        # Start and stop of each value, for the grower (one read's events).
        spans: list[int] = []
        if grower is not None:
            # The blocks whose values the grower proves extend the one before,
            # scanned once each (see decode_blocks); the loop goes on after them.
            values, start = grower.decode_blocks(head, view, start, size, crlf=crlf, cap=size)
        # Once, if it took no block where blocks may be taken (a grower
        # handing over Extensions: see decode_blocks): see below.
        retry = grower is not None and grower.extends and not values
        # (Prefixes compared as slices: a bytes method with a range parses
        # its arguments at a cost of hundreds of instructions a call, more
        # than a short copy.  A "data: " slice reaching past the line end
        # holds its LF, which the prefix has not, so the result is the same;
        # the blank line's CRLF is bounded by the region's end explicitly.)
        while (end := find(b"\n", start, size)) >= 0 and head[start : start + 6] == b"data: ":
            after = end + 1
            if not crlf:
                if after < size and head[after] != 0x0A:
                    break  # no blank line next: the general rules
                stop = end
                next_start = after + 1
            else:
                stop = end - 1
                if (
                    # The line's first CR is the one before its LF (one scan
                    # for both: the CR there, and no lone CR before it).
                    find(b"\r", start, end) != stop
                    or (after < size and (after + 2 > size or head[after : after + 2] != b"\r\n"))
                ):
                    break  # a lone CR, or no blank line next: the general rules
                next_start = after + 2
            # (_data_value's steps, without the call: one per event; with a
            # grower, the values' places are kept and all decoded in one
            # call below, before any other line is.)
            if grower is not None:
                spans += (start + 6, stop)
            else:
                values.append(str(view[start + 6 : stop], "utf-8", "replace"))
            start = next_start
            if start > size:  # the blank line ended the region
                break
            if retry:
                # decode_blocks took nothing: the grower had no previous
                # value (the read's short lines went before, decoded whole
                # with the region cut before this line: see
                # long_lines_from).  This block's value is now decoded by
                # the grower, which keeps it, so the blocks after it go
                # decode_blocks' way (one scan each), not this loop's with
                # decode_many (8 KB replies in 256 events: -1.5 to -2.5% of a
                # chat's instructions in the client).
                retry = False
                assert grower is not None  # (retry is set only with one)
                values += grower.decode_many(head, view, spans)
                spans = []
                more, start = grower.decode_blocks(head, view, start, size, crlf=crlf, cap=size)
                values += more
        if spans:
            assert grower is not None  # (spans are kept only with one)
            values += grower.decode_many(head, view, spans)
        if values:
            if lazy and start > size:
                # The blank line ended the region: the run is the chunk's last.
                self.last_event_id = last_id
                self._run = (values, last_id)
                return events
            events = _message_list(values, last_id)
            self.last_event_id = last_id
            if start > size:  # the blank line ended the region
                return events
    while True:
        end = find(b"\n", start, size)
        stop = size if end < 0 else end
        if crlf and stop > start:
            if end >= 0 and head[stop - 1] == 0x0D:
                stop -= 1
            if find(b"\r", start, stop) >= 0:
                # Lone CRs: the piece holds several lines.
                self._data = data
                text = str(view[start:stop], "utf-8", "replace")
                events += self._process(text.replace("\r", "\n").split("\n"))
                data = self._data
                if end < 0:
                    break
                start = end + 1
                continue
        if head.startswith(b"data: ", start, stop):
            value = _data_value(grower, head, view, start + 6, stop)
            after = end + 1
            if (
                end >= 0
                and not data
                and (after == size or head[after] == 0x0A or (crlf and head[after] == 0x0D))
            ):
                # The blank line after it (an empty line at the region's
                # end, or LF, or CRLF next): spec: dispatch (steps 1, 3 to
                # 7, as in _process) with this one value, no list to join.
                if after < size and head[after] == 0x0D:
                    if not head.startswith(b"\r\n", after):
                        data.append(whole(value))  # a lone CR: the general rules
                        start = after
                        continue
                    after += 1
                self.last_event_id = self._id_buffer
                events.append(
                    _new_event(
                        SSEEvent,
                        (
                            self._event_type or "message",
                            value,
                            self._id_buffer,
                            self._event_retry,
                        ),
                    )
                )
                self._event_type = ""
                self._event_retry = None
                if after >= size:
                    break
                start = after + 1
                continue
            # (One line of several: text, not an Extension; see GrowingValues.)
            data.append(whole(value))
        elif stop == start and data:
            # spec: dispatch (steps 1, 3 to 7, as in _process).
            self.last_event_id = self._id_buffer
            events.append(_dispatch(self._event_type, data, self.last_event_id, self._event_retry))
            data = self._data = []
            self._event_type = ""
            self._event_retry = None
        else:
            self._data = data
            events += self._process((str(view[start:stop], "utf-8", "replace"),))
            data = self._data
        if end < 0:
            break
        start = end + 1
    self._data = data
    return events


def complete_line(
    self: SSEParser, line: bytes, data: bytes, first: int, end: int, *, crlf: bool, lazy: bool
) -> tuple[list[SSEEvent], int]:
    """The long line ``line`` that the chunk ``data`` just completed (its
    line end at ``data[first]``; ``end``: the chunk's last line end), and
    the long lines after it.  Gives the events and where the chunk's lines
    left to interpret start (past ``end``: none).

    When ``line`` is a data line, nothing is pending and a blank line
    follows in ``data``, its event is what the general rules give for the
    two lines (spec: append the value to the empty data buffer, then
    dispatch it: type "message", the last event ID buffer, no retry), made
    in one step: a reply resent whole in every event completes such a line
    in nearly every chunk.  The chunk's lines after the blank line then go
    on here when they are long, as :meth:`_interpret` would send them.
    Otherwise the line goes through :meth:`_interpret` alone.  ``lazy``:
    as :func:`process_long`'s, for the lines after it.
    """
    stop = len(line)
    if crlf and line.endswith(b"\r"):
        stop -= 1
        after = first + 3 if data.startswith(b"\r\n", first + 1) else 0
    else:
        after = first + 2 if data.startswith(b"\n", first + 1) else 0
    if (
        not after
        or not line.startswith(b"data: ")
        or self._data
        or self._event_type
        or self._event_retry is not None
        or stop > self.max_line_size
        or stop > self.max_event_size
        or (crlf and line.find(b"\r", 0, stop) >= 0)
    ):
        if crlf and 0x0D in line:
            line = to_lf(line)  # its CRLF, or lone CRs: lines of their own
        events = self._interpret(line, 0, len(line) - (line[-1:] == b"\n"))
        self._account()
        return events, first + 1
    value = _data_value(self._grower, line, memoryview(line), 6, stop)
    # spec: dispatch, step 1: the last event ID string is the buffer's.
    self.last_event_id = last_id = self._id_buffer
    self._data_size = 0
    events = [_new_event(SSEEvent, ("message", value, last_id, None))]
    # The lines after the blank line, as _interpret takes them (the region
    # ends before the last line end, its CR included): when they are within
    # both caps (the data buffer is empty now) and the first is long, here,
    # without the calls between.
    stop = end - crlf
    if after <= end and stop - after <= self.max_line_size and stop - after <= self.max_event_size:
        next_end = data.find(b"\n", after, stop)
        if next_end < 0 or next_end - after >= self._long_line:
            events += process_long(self, data, after, stop, crlf, lazy=lazy)
            return events, end + 1
    return events, after


def feed_long(self: SSEParser, data: bytes) -> list[SSEEvent] | None:
    """:meth:`feed`, in fewer steps, for a chunk of a stream of long data
    lines: a long line is pending (the parser's ``_long_line`` bytes of it
    or more, see SSEParser._long_line: feed looks no further for other
    streams), or the chunk before was all such blocks (``_long_run``: at 4
    KiB reads a chunk often leaves only a few bytes of the next line), and
    the chunk holds no CR.  ``None`` when the chunk is not one this takes
    whole (nothing changed then: feed goes its general way).

    A chunk without a line end goes on with the pending line.  Otherwise
    the line it completes must be a data line with the blank line right
    after it, and nothing else pending: its event is what the general
    rules give for the two lines (spec: append the value to the empty data
    buffer, then dispatch: type "message", the last event ID buffer, no
    retry), and so is each next long "data: V" line with its blank line.
    The first line that is anything else (short, another field, no blank
    line after it, over a cap) and those after it go through
    :meth:`_interpret`, with the events before them, as feed sends them;
    what follows the last line end waits as in feed.  Feed's own way takes
    several calls and checks that this stream never needs; at 16 KiB reads
    of 8 KB replies a chunk holds two events, so they were most of the
    parser's own time.
    """
    if 0x0D in data:
        return None  # CRs are normalised by feed
    # (A stream's first bytes, a possible BOM, were checked by feed before
    # anything was pending, and a chunk that ended in a CR left nothing
    # pending and went feed's way, which clears _long_run: feed's _start and
    # _skip_lf need nothing here.)
    pending = self._pending
    first = data.find(b"\n")
    if first < 0:
        pending.append(data)
        self._pending_len += len(data)
        if self._pending_len > self.max_line_size:
            self._fail_line(self._pending_len, [])
        return []
    size = self._pending_len + first
    if (
        data[first + 1 : first + 2] != b"\n"  # (see process_long)
        or size > self.max_line_size
        or size > self.max_event_size
        # (Nothing is pending after a chunk of these blocks alone: _long_run
        # is set only after such a chunk, and every other way that sets a
        # pending field clears it first.)
        or (
            not self._long_run and (self._data or self._event_type or self._event_retry is not None)
        )
    ):
        return None
    grower = self._grower
    if pending:
        pending.append(data[:first] if first <= VIEW_FROM else memoryview(data)[:first])
        line = b"".join(pending)
        if line[:6] != b"data: ":  # (see process_long)
            pending.pop()
            return None
        # (_data_value's steps, without the call: size is len(line).)
        if grower is not None:
            value = grower.decode(line, memoryview(line), 6, size)
        else:
            value = str(memoryview(line)[6:], "utf-8", "replace")
    elif data[:6] == b"data: ":
        # The line starts this chunk (the one before ended with a blank
        # line): decoded in place, not copied out first.
        if grower is not None:
            value = grower.decode(data, memoryview(data), 6, first)
        else:
            value = str(memoryview(data)[6:first], "utf-8", "replace")
    else:
        return None
    # spec: dispatch, step 1: the last event ID string is the buffer's (no
    # id line comes before the next dispatch here).
    last_id = self._id_buffer
    # The chunk's events in order; ``lazy`` (see SSEParser._run): their
    # values (each: type "message", the last event ID, no retry), built only
    # when other lines follow them in the chunk.
    lazy = self._lazy
    out: list[Any] = [value] if lazy else [_new_event(SSEEvent, ("message", value, last_id, None))]
    end = data.rfind(b"\n")
    start = first + 2
    if start < end:
        long_line = self._long_line
        view = memoryview(data)
        find = data.find
        # Start and stop of each value, for the grower (one read's events).
        spans: list[int] = []
        if grower is not None:
            # The blocks whose values the grower proves extend the one before,
            # scanned once each (see decode_blocks); the loop goes on after them.
            taken, start = grower.decode_blocks(
                data, view, start, end, crlf=False, cap=min(self.max_line_size, self.max_event_size)
            )
            if taken:
                out += taken if lazy else _message_events(taken, last_id)
        while start < end:
            stop = find(b"\n", start)
            size = stop - start
            if (
                stop == end  # its blank line is in a later chunk
                or size < long_line
                or data[stop + 1] != 0x0A
                or data[start : start + 6] != b"data: "  # (see process_long)
                or size > self.max_line_size
                or size > self.max_event_size
            ):
                break
            # (_data_value's steps, without the call: one per event; with a
            # grower, all decoded in one call below, before any other line.)
            if grower is not None:
                spans += (start + 6, stop)
            else:
                value = str(view[start + 6 : stop], "utf-8", "replace")
                out.append(
                    value if lazy else _new_event(SSEEvent, ("message", value, last_id, None))
                )
            start = stop + 2
        if spans:
            assert grower is not None  # (spans are kept only with one)
            if len(spans) == 2:
                value = grower.decode(data, view, *spans)
                out.append(
                    value if lazy else _new_event(SSEEvent, ("message", value, last_id, None))
                )
            else:
                values = grower.decode_many(data, view, spans)
                out += values if lazy else _message_events(values, last_id)
    self.last_event_id = last_id
    self._data_size = 0
    rest_len = len(data) - end - 1
    self._pending = (
        []
        if not rest_len
        else [data[end + 1 :] if rest_len < VIEW_FROM else memoryview(data)[end + 1 :]]
    )
    self._pending_len = rest_len
    events: list[SSEEvent] = out
    if lazy:
        if start > end:
            self._run = (out, last_id)  # the events, unbuilt (see SSEParser._run)
            events = []
        else:
            events = _message_list(out, last_id)
    if start > end:
        # The next chunk comes here too, whatever is pending: every line was
        # one of these blocks (see SSEParser._long_run).
        self._long_run = True
    else:
        self._long_run = False
        # The lines left, up to the last line end, as feed sends them.
        events += self._interpret(data, start, end, events)
        if self._data:
            self._account()
        else:
            self._data_size = 0
    if rest_len > self.max_line_size:
        self._fail_line(rest_len, events)
    return events
