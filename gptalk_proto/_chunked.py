"""HTTP/1.1 chunked bodies (RFC 9112 section 7.1), read without h11.

Why not h11 for this part: GPTalk servers flush every event, so the stream
body is one HTTP chunk per event, and h11 costs about 5 microseconds per chunk
in pure Python -- more than parsing the event itself.  This decoder turns all
the chunks of one read into one run of body bytes with a few ``find`` calls
and slices.

It accepts and refuses what h11 0.16 does (a differential property test holds
it to that): chunk-size lines end at the first CRLF and are 1 to 20 hex digits,
optionally ``;`` and extensions (ignored), optionally spaces or tabs; the data
of a chunk must be followed by exactly CRLF; the last chunk (size 0) is
followed by trailer fields, each checked as a header field, then a blank line.
"""

from __future__ import annotations

import re

from ._errors import RemoteProtocolError
from ._head import FIELD

__all__ = ["DEFAULT_MAX_CHUNK_LINE", "ChunkedDecoder"]

#: Cap on a chunk-size line or the trailer section, in bytes (what h11
#: allows an incomplete event by default in ClientConnection).
DEFAULT_MAX_CHUNK_LINE = 64 * 1024

# RFC 9112 section 7.1: chunk = chunk-size [ chunk-ext ] CRLF chunk-data CRLF;
# chunk-size = 1*HEXDIG (at most 20 here: 2**64 has 20 decimal digits);
# extensions are not interpreted; trailing spaces and tabs are tolerated.
_CHUNK_LINE = re.compile(rb"([0-9A-Fa-f]{1,20})(?:;.*)?[ \t]*")
# The common chunk-size line, matched with its CRLF in one step: digits only.
_PLAIN_CHUNK_LINE = re.compile(rb"([0-9A-Fa-f]{1,20})\r\n")
# The CRLF that ends a chunk's data and the plain size line after it, in one
# step: what comes between two chunks of a server that flushes every event.
_NEXT_CHUNK_LINE = re.compile(rb"\r\n([0-9A-Fa-f]{1,20})\r\n")
# The end of the trailer section: a line end, then an empty line.
_BLANK_LINE = re.compile(rb"\n\r?\n")

_SIZE, _DATA, _CRLF, _TRAILER, _DONE = range(5)


class ChunkedDecoder:
    """Chunked transfer coding in, body bytes out.

    :meth:`feed` returns the body bytes a read completed; ``done`` turns true
    after the last chunk and its trailers, and ``leftover`` holds bytes past
    the end (the next response's).  Errors raise
    :class:`~gptalk_proto.RemoteProtocolError` whose ``partial`` attribute
    holds the body bytes decoded before the error in that call.
    """

    __slots__ = ("_crlf", "_left", "_max_line", "_pending", "_pending_len", "_state", "leftover")

    def __init__(self, *, max_line: int = DEFAULT_MAX_CHUNK_LINE) -> None:
        self._max_line = max_line
        self._state = _SIZE
        self._left = 0  # data bytes left in the current chunk
        self._crlf = 0  # bytes of the CRLF after a chunk's data seen so far
        # An unfinished size line or trailer section, as the reads brought it,
        # and its length (at most max_line).
        self._pending: list[bytes] = []
        self._pending_len = 0
        self.leftover = b""

    @property
    def done(self) -> bool:
        return self._state == _DONE

    def feed(self, data: bytes) -> bytes:
        """Decode one read; return the body bytes it completed."""
        if self._state == _DONE:
            self.leftover += data
            return b""
        pending = self._pending
        if pending and data:
            pending.append(data)
            self._pending_len += len(data)
            if self._state == _TRAILER:
                # A blank line not in what came before ends in this read: it
                # starts at most two bytes back.  (A section of one byte may
                # be the CR of a CRLF that ends it at once.)
                before = pending[-2][-2:]
                if len(before) < 2 and len(pending) > 2:
                    before = pending[-3][-1:] + before
                stuck = self._pending_len - len(data) > 1 and not _BLANK_LINE.search(before + data)
            else:  # _SIZE: the line ends at its first CRLF
                stuck = b"\r\n" not in data and not (
                    data[:1] == b"\n" and pending[-2][-1:] == b"\r"
                )
            if stuck:
                # Nothing can end here: kept as it came.  Joining and searching
                # all of it at every read was quadratic in a size line or a
                # trailer section sent in tiny reads.
                if self._pending_len > self._max_line:
                    self._state = _DONE
                    error = self._too_long()
                    error.partial = b""  # type: ignore[attr-defined]
                    raise error
                return b""
            buf = b"".join(pending)
            self._pending = []
        elif pending:
            return b""  # an empty read: nothing changes
        else:
            buf = data
        out: list[bytes | memoryview] = []
        view = memoryview(buf)
        pos, size = 0, len(buf)
        if self._state == _SIZE:
            # The common read of a server that flushes every event: whole
            # chunks, each a plain size line, its data and the CRLF after it,
            # taken here with a few steps each; the loop below goes on from
            # the first thing that is not one (the last chunk, a chunk whose
            # end is not in this read, an extension, an error), at ``pos`` in
            # the state it would have got there in itself (_SIZE; _DATA in a
            # chunk's data; _TRAILER past the last chunk's size line).  (The loop
            # has a fast path of its own for whole chunks, for reads that
            # start inside a chunk; the two kept apart on purpose: one helper
            # for both cost 9-11% more instructions per read of one event or
            # of 4 KiB, in a call and the loop's setup, callgrind.)
            # Each chunk's data is cut at the match of its CRLF and the next
            # size line together (one regular expression step, no
            # startswith call, per chunk); the last chunk of the run is the
            # read's last (taken here) or goes on below as the data of a
            # chunk whose size line was read (state _DATA), or as the last
            # chunk (size 0: state _TRAILER).
            match = _PLAIN_CHUNK_LINE.match(buf)
            if match is not None:
                next_line = _NEXT_CHUNK_LINE.match
                left = int(match[1], 16)
                pos = match.end()  # where the chunk's data starts
                while left:
                    stop = pos + left
                    # (A size past the read is not matched at all: it can be
                    # beyond what an index holds.)
                    if stop >= size or (after := next_line(buf, stop)) is None:
                        break
                    out.append(view[pos:stop])
                    left = int(after[1], 16)
                    pos = after.end()
                if not left:
                    self._state = _TRAILER
                else:
                    stop = pos + left
                    if stop + 2 == size and buf[stop] == 13 and buf[stop + 1] == 10:
                        # The read ends with this chunk: the common read.
                        out.append(view[pos:stop])
                        return b"".join(out)
                    self._left = left
                    self._state = _DATA
        find = buf.find
        append = out.append
        chunk_line = _CHUNK_LINE.fullmatch
        plain_line = _PLAIN_CHUNK_LINE.match
        next_line = _NEXT_CHUNK_LINE.match
        try:
            while pos < size:
                state = self._state
                if state == _SIZE:
                    match = plain_line(buf, pos)
                    if match is not None:
                        # The loop's fast path, one step per chunk (for reads
                        # that start inside a chunk, or past what the fast
                        # path above stopped at): whole chunks, each one's
                        # data followed by its CRLF and the next plain size
                        # line (matched together), cut with no other test.
                        # The last chunk of the run, or one whose end is not
                        # in this read, goes on below.
                        left = int(match[1], 16)
                        pos = match.end()  # where the chunk's data starts
                        while left:
                            stop = pos + left
                            # (A size past the read is not matched at all:
                            # it can be beyond what an index holds.)
                            if stop >= size or (after := next_line(buf, stop)) is None:
                                break
                            append(view[pos:stop])
                            left = int(after[1], 16)
                            pos = after.end()
                        # pos and left: the last chunk's data start and size.
                    else:
                        end = find(b"\r\n", pos)
                        if end < 0:
                            self._keep(buf, pos)
                            break
                        match = chunk_line(buf, pos, end)
                        if match is None:
                            raise RemoteProtocolError(
                                f"illegal chunk header: {buf[pos:end][:60]!r}"
                            )
                        left = int(match[1], 16)
                        pos = end + 2
                    if not left:
                        self._state = _TRAILER
                        continue
                    # A chunk whole in this read (the last of a run above).
                    stop = pos + left
                    if stop + 2 <= size and buf[stop] == 13 and buf[stop + 1] == 10:
                        out.append(view[pos:stop])
                        pos = stop + 2
                        continue
                    self._left = left
                    self._state = _DATA
                elif state == _DATA:
                    take = min(self._left, size - pos)
                    out.append(view[pos : pos + take])
                    pos += take
                    self._left -= take
                    if not self._left:
                        self._state = _CRLF
                elif state == _CRLF:
                    # The CRLF after the data, compared byte by byte as it comes.
                    if buf[pos] != b"\r\n"[self._crlf]:
                        raise RemoteProtocolError(
                            f"malformed chunk footer: expected CRLF after the chunk data, "
                            f"got {buf[pos : pos + 2]!r}"
                        )
                    pos += 1
                    self._crlf += 1
                    if self._crlf == 2:
                        self._crlf = 0
                        self._state = _SIZE
                else:  # _TRAILER
                    pos = self._trailers(buf, pos)
                    if self._state != _DONE:
                        break
                    self.leftover = buf[pos:]
                    break
        except RemoteProtocolError as exc:
            exc.partial = b"".join(out)  # type: ignore[attr-defined]
            self._state = _DONE
            raise
        if len(out) == 1 and len(out[0]) == size and type(buf) is bytes:
            # The whole read is chunk data (a chunk longer than the read, as
            # a long event is): it is the body as it came, with no copy.
            return buf
        return b"".join(out)

    def _keep(self, buf: bytes, pos: int) -> None:
        rest = buf[pos:]
        if len(rest) > self._max_line:
            raise self._too_long()
        self._pending = [rest]
        self._pending_len = len(rest)

    def _too_long(self) -> RemoteProtocolError:
        return RemoteProtocolError(
            f"chunk-size line or trailers over {self._max_line} bytes without a line end"
        )

    def _trailers(self, buf: bytes, pos: int) -> int:
        # No trailers: the blank line right away (LF alone is accepted too).
        if buf.startswith(b"\r\n", pos):
            self._state = _DONE
            return pos + 2
        if buf.startswith(b"\n", pos):
            self._state = _DONE
            return pos + 1
        match = _BLANK_LINE.search(buf, pos)
        if match is None:
            self._keep(buf, pos)
            return len(buf)
        lines = buf[pos : match.start() + 1].split(b"\n")[:-1]
        self._check_fields([line[:-1] if line.endswith(b"\r") else line for line in lines])
        self._state = _DONE
        return match.end()

    @staticmethod
    def _check_fields(lines: list[bytes]) -> None:
        joined: list[bytes] = []
        for line in lines:
            if line[:1] in (b" ", b"\t"):
                # obs-fold (RFC 9112 section 5.2): continues the previous field.
                if not joined:
                    raise RemoteProtocolError("continuation line at the start of the trailers")
                joined[-1] += b" " + line.lstrip(b" \t")
            else:
                joined.append(line)
        for field in joined:
            if not FIELD.fullmatch(field):  # RFC 9110 section 5, as h11 reads it
                raise RemoteProtocolError(f"illegal trailer line: {field[:60]!r}")

    def eof(self) -> None:
        """The connection closed: an error unless the body was complete."""
        if self._state != _DONE:
            raise RemoteProtocolError(
                "peer closed connection without sending complete message body "
                "(incomplete chunked read)"
            )


# -- h11, at one boundary ----------------------------------------------------------
#
# Everything else of the core that speaks HTTP/1.1 goes through these: h11's
# errors are re-typed here and nowhere else, and only public h11 names are used.
