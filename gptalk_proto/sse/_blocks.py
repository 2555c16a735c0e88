"""Server-sent events: runs of whole field blocks, recognised in C.

Servers that name their events write every block the same way: an ``id``
line, an ``event`` line, one or more ``data`` lines, a blank line.  The spec's
loop takes a Python step per line (six per event for three data lines); here
a region of such blocks is cut by string methods in C and proven by counting
(see split_blocks), or, when that proof fails, a run of them is matched by
one regular expression in C; either way the events are built in bulk.

What a matched block gives is what the spec's rules give, line by line:

* ``id: V`` (V without NUL or line end) -- spec: "If the field value does not
  contain U+0000 NULL, then set the last event ID buffer to the field value."
  A value with NUL is ignored by the spec: such a block does not match here,
  and goes through the general loop.
* ``event: T`` -- spec: "Set the event type buffer to the field value."
* ``data: V`` lines -- spec: "Append the field value to the data buffer, then
  append a single U+000A LINE FEED (LF) character", the last LF removed at
  dispatch: the values joined by LF.  No value holds a line end, so every
  ``"\\ndata: "`` in the captured lines is a line start: replacing it by LF
  joins the values.
* the blank line dispatches (spec: "Dispatch the event"): the last event ID
  string becomes the block's id, type ``T`` or "message" when empty, no retry
  (no retry line in the block).

Only lines are matched: the caller runs this on whole lines (the region's
text, without its last line end) when no event is pending.
"""

from __future__ import annotations

import re
from itertools import repeat
from typing import TYPE_CHECKING

from ._event import SSEEvent, _events
from ._lines import crlf_lines, lf_lines

if TYPE_CHECKING:
    from ._parser import SSEParser

__all__ = ["field_blocks", "simple_run", "split_blocks", "text_region"]

# What separates two simple blocks' values (see simple_run): a line end, the
# blank line's, and the next "data: ".
#
# Texts are cut at them by rsplit, not split: the same pieces (two of these
# separators cannot overlap: only the first character is a line end's), in
# about half the time on texts of words.  CPython (3.11) searches forwards by
# comparing each window's LAST character, here the space that ends "data: "
# and every other word, so it stops at every word; backwards it compares the
# FIRST character, a line end, which a value never holds.
_TEXT_SEPARATORS = {False: "\n\ndata: ", True: "\r\n\r\ndata: "}

#: Texts are split a window of at least this many characters at a time (see
#: _split): windows of under 30,000 characters unless values are long.
_SPLIT_WINDOW = 16_000

# One block: the field names spelled as servers write them, each with its
# space, values without a line end (ids without NUL, event types not empty),
# then what else is left: findall() takes the blocks one after the other from
# the start, and the first text that is not one whole block ends the run and
# lands, whole, in the last group.  So one pass in C finds the run and its
# groups.
_FIELDS = "id: ([^{e}\x00]*){n}event: ([^{e}]+){n}data: ([^{e}]*(?:{n}data: [^{e}]*)*){n}{n}|(.+)"
_RUNS = {
    False: re.compile(_FIELDS.format(e="\n", n="\n"), re.DOTALL),
    True: re.compile(_FIELDS.format(e="\r\n", n="\r\n"), re.DOTALL),
}


def _split(text: str, crlf: bool) -> list[str]:
    """``text.rsplit(separator)``, about _SPLIT_WINDOW characters at a time.

    CPython (3.10 to 3.13) searches a text of 30,000 characters or more for a
    separator of 6 or more with its two-way algorithm, which prepares the
    separator again at every search: a split of a 64 KiB read of short
    events spent more on that than on the decode.  Cut at separators (they
    cannot overlap one another), the pieces split to the same values.
    """
    sep = _TEXT_SEPARATORS[crlf]
    values: list[str] = []
    at = 0
    while len(text) - at >= _SPLIT_WINDOW and (cut := text.find(sep, at + _SPLIT_WINDOW)) >= 0:
        values += text[at:cut].rsplit(sep)
        at = cut + len(sep)
    return values + text[at:].rsplit(sep)


# Texts of whole blocks are cut at these (see text_region and split_blocks),
# by line end: between two blocks (the blank line's line ends and the next
# "id: "), after the id line, and before each data line.
_BLOCK_SEPARATORS = {
    False: ("\n\nid: ", "\nevent: ", "\ndata: "),
    True: ("\r\n\r\nid: ", "\r\nevent: ", "\r\ndata: "),
}


def text_region(self: SSEParser, text: str, crlf: bool) -> list[SSEEvent]:
    """A decoded region (whole lines, without the last line end; ``crlf``:
    its line ends were not normalised): runs of whole id/event/data blocks
    go by :func:`split_blocks` (or, when that turns them away, by
    :func:`field_blocks`), not a step per line; the lines before the first
    block (a region read mid-block) and from the block the region ends in
    go through the general rules (``self`` is the parser)."""
    lines = crlf_lines if crlf else lf_lines
    if "id: " not in text:  # no block here: no copies of the text
        return self._process(lines(text))
    separator = _BLOCK_SEPARATORS[crlf][0]
    # Each block follows a blank line (the previous block's end), but the
    # first when it starts the region: a cut at each (see _TEXT_SEPARATORS
    # for why backwards; no separator here overlaps itself, so the pieces
    # are split's).
    blocks = text.rsplit(separator)
    if len(blocks) == 1:
        return self._process(lines(text))
    done: list[SSEEvent] = []
    if text.startswith("id: ") and not self._data and not self._event_type:
        blocks[0] = blocks[0][4:]  # a block starts the region: without its "id: "
        before = 4 - len(separator)
    else:
        # The lines before the first blank line followed by an id line, and
        # that blank line.
        done = self._process([*lines(blocks[0]), ""])
        before = len(blocks[0])
        del blocks[0]
    tail = blocks.pop()
    if not blocks or self._event_retry is not None:
        # (No whole block; or a retry field is pending: the general rules.)
        return done + self._process(lines("id: " + separator.join([*blocks, tail])))
    # The blocks' length: the text's, less what is not theirs.
    size = len(text) - before - len(tail) - len(separator) * (len(blocks) + 1)
    found = split_blocks(blocks, size, crlf)
    if found is not None:
        rest = "id: " + tail
    else:
        found, rest = field_blocks("id: " + separator.join([*blocks, tail]), crlf)
    if found:
        self.last_event_id = self._id_buffer = found[-1].id
        done += found
    return done + self._process(lines(rest))


def field_blocks(text: str, crlf: bool = False) -> tuple[list[SSEEvent], str]:
    """The events of the run of whole ``id``/``event``/``data`` blocks that
    starts ``text``, and the text after the run (the caller goes on from there
    with the general rules; the last event's ``id`` is the last event ID
    string).  ``crlf``: the text's lines end in CRLF (not normalised).  By
    the regular expression, which stops at the first block that is not one:
    for the texts :func:`split_blocks` turns away."""
    found = _RUNS[crlf].findall(text)
    rest = found.pop()[3] if found and found[-1][3] else ""
    if not found:
        return [], rest
    ids, types, datas, _ = zip(*found, strict=True)
    joined = map(str.replace, datas, repeat("\r\ndata: " if crlf else "\ndata: "), repeat("\n"))
    return list(_events(zip(types, joined, ids, repeat(None)))), rest


def split_blocks(blocks: list[str], size: int, crlf: bool) -> list[SSEEvent] | None:
    """The events of ``blocks``, the pieces of a text cut at every blank
    line followed by an id line (without that ``"id: "``; ``size``: their
    length together), when every one is a whole id/event/data block:
    cut by C string methods, proven by counting, with no step per character
    (the regular expression takes dozens of instructions per character,
    most of a multi-line event's parse).  ``None`` when any is not one.

    Each block is cut at its first ``"\ndata: "`` into its head and its
    data lines, and the head at its first ``"\nevent: "`` into the id and
    the event type; each LF before ``"data: "`` in the data lines is then
    what joins two values (spec: "Append the field value to the data
    buffer, then append a single U+000A LINE FEED (LF) character").  (CRLF
    for LF when ``crlf``.)  When no id or type holds a line end (or an id a
    NUL), and the values hold only the LFs the joins put there (counted
    against the length the joins took off), every line end of a block is
    in a separator: the block is exactly the lines ``"id: X"``, ``"event:
    T"``, ``"data: Vi"`` (one or more), and after it the blank line, and
    gives the event (T, the Vi joined by LF, X, no retry).  spec: the id
    sets the last event ID buffer (X holds no NUL), the type buffer is T
    (checked not empty), the blank line dispatches.
    """
    _, event_separator, data_separator = _BLOCK_SEPARATORS[crlf]
    heads, found_data, datas = zip(*map(str.partition, blocks, repeat(data_separator)), strict=True)
    ids, found_event, types = zip(*map(str.partition, heads, repeat(event_separator)), strict=True)
    # (Truth tests, not ``"" in``: a look at each length, not a comparison.)
    if not (all(found_data) and all(found_event) and all(types)):
        return None
    values = list(map(str.replace, datas, repeat(data_separator), repeat("\n")))
    id_text, type_text, value_text = "".join(ids), "".join(types), "".join(values)
    if "\n" in id_text or "\n" in type_text or "\x00" in id_text:
        return None
    if crlf and ("\r" in id_text or "\r" in type_text or "\r" in value_text):
        return None
    # The data lines' length, the blocks' less the rest, against the values':
    # each join took the separator's length less one character off.
    separators = len(event_separator) + len(data_separator)
    data_length = size - len(blocks) * separators - len(id_text) - len(type_text)
    if value_text.count("\n") * (len(data_separator) - 1) != data_length - len(value_text):
        return None
    return list(_events(zip(types, values, ids, repeat(None))))


def simple_run(
    buf: bytes, start: int, end: int, crlf: bool, line: int
) -> tuple[bool, list[str], str | None] | None:
    """The region ``buf[start:end]`` (whole lines, without the last line end)
    when it is made of simple blocks -- one ``"data: "`` line, then a blank
    line -- maybe opened by a blank line (which dispatches what is pending)
    and maybe closed by a data line still waiting for its blank line.  Gives
    (whether a blank line opens it, the values of the whole blocks, the value
    of the waiting data line or ``None``); ``None`` when the region is
    anything else.  ``line``: where the region's first LF is (-1: none).

    Nearly every stream is such blocks, short or long.  Whether a region is
    one is decided in C, not by looking at each line: a region that starts
    with ``"data: "`` is decoded once (without that prefix and the last
    block's blank line) and split at ``"\\n\\ndata: "``; when no piece holds
    a line end, every line end of the region is inside one of those
    separators, so it reads ``"data: V1"``, then ``"\\n\\ndata: Vi"`` k
    times, then maybe the last block's blank line, and the pieces are the
    values.  (Counting line ends proves the same, but reads every byte in a
    plain loop: three counts cost more than the decode and the split of short
    events.)  The first block is looked at before the decode, so that most
    streams of other blocks are turned away for a find.

    With ``crlf`` the lines end in CRLF (the caller found CRLF before its last
    line end and no CR after it): the separator is ``"\\r\\n\\r\\ndata: "`` and
    no piece may hold a CR either, which proves every line end a CRLF, so the
    stream is read as it came, without normalising it to LF first (a copy of
    every chunk, and most of the parse of short CRLF events).  A lone CR
    (spec: a line end of its own) is left in a piece: ``None``.
    """
    if crlf:
        return _crlf_run(buf, start, end, line)
    # LF line ends: the same steps as _crlf_run, with one-byte line ends
    # (fewer Python steps: this runs once per read of nearly every stream).
    if start == end:
        return None  # one blank line: the general rules
    opened = buf[start] == 0x0A  # a blank line first: it dispatches what is pending
    first = start + opened
    if not buf.startswith(b"data: ", first, end):
        # Anything else, or the region is two blank lines: dispatch, nothing more.
        return (True, [], None) if first == end else None
    # Before the last block's blank line, or at the end (see _crlf_run).
    stop = end - (buf[end - 1] == 0x0A)
    if line < first:
        line = buf.find(b"\n", first, stop)
    if 0 <= line < stop and not buf.startswith(b"\n\ndata: ", line, stop):
        return None
    # A copy of the bytes, then bytes.decode: a memoryview and str() of it
    # cost more than the copy (callgrind: ~1,800 instructions more to decode
    # a 4 KiB region).
    text = buf[first + 6 : stop].decode("utf-8", "replace")
    # (A text has at most as many characters as its bytes.)
    values = text.rsplit("\n\ndata: ") if stop - first < _SPLIT_WINDOW else _split(text, False)
    if "\n" in "".join(values):
        return None
    return opened, values, values.pop() if stop == end else None


def _crlf_run(
    buf: bytes, start: int, end: int, line: int
) -> tuple[bool, list[str], str | None] | None:
    """:func:`simple_run` for a region whose lines end in CRLF."""
    first = start
    if buf.startswith(b"\r\n", start, end):
        first += 2  # a blank line first: it dispatches what is pending
    opened = first > start
    if start == end:
        return None  # one blank line: the general rules
    if not buf.startswith(b"data: ", first, end):
        if first < end:
            return None
        # The region is one blank line (or two): dispatch, nothing more.
        return (opened, [], None) if opened else None
    # Where the last value stops: before the last block's blank line when
    # the region ends with it, else at the end (a data line still waiting for
    # its blank line).
    whole = buf[end - 1] == 0x0A
    stop = end - 2 if whole else end
    if whole and buf[end - 2] != 0x0D:
        return None
    # A look at the first block before the whole region is decoded: streams
    # of other blocks (several data lines, event or id fields) mostly show it
    # there.
    if line < first:
        line = buf.find(b"\n", first, stop)
    if 0 <= line < stop and not buf.startswith(b"\r\n\r\ndata: ", line - 1, stop):
        return None
    # One decode and one split; no value holding a line end then proves that
    # every line end is inside a separator (their joined text, one copy, is
    # searched by memchr, where counting line ends reads every byte in a
    # plain loop).
    text = buf[first + 6 : stop].decode("utf-8", "replace")  # (see simple_run)
    values = text.rsplit("\r\n\r\ndata: ") if len(text) < _SPLIT_WINDOW else _split(text, True)
    joined = "".join(values)
    if "\n" in joined or "\r" in joined:
        return None
    return opened, values, values.pop() if stop == end else None
