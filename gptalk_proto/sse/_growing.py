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

__all__ = ["MAX_GROWING_TAIL", "GrowingValues"]

#: The largest ``growing_tail``: a hint about a few closing bytes, not a cap.
MAX_GROWING_TAIL = 64

#: Values shorter than this many bytes are decoded whole: decoding them costs
#: less than the Python steps that prove a reuse exact.
_REUSE_FROM = 2048

#: The pieces the previous text is kept in (see GrowingValues.decode) are
#: joined into one when there are more than this many.
_MAX_PIECES = 32


class GrowingValues:
    """The decoding of successive long data values of one stream."""

    __slots__ = ("_previous", "tail")

    def __init__(self, tail: int) -> None:
        if not 0 < tail <= MAX_GROWING_TAIL:
            raise LocalProtocolError(f"growing_tail must be 0 to {MAX_GROWING_TAIL}")
        self.tail = tail
        # The last value's bytes without its tail (a view of the buffer it was
        # parsed from: no copy, and the buffer is at most a line, within the
        # parser's cap, or one chunk), and their text, kept as pieces: a
        # long text followed by the short ones each later value added.
        self._previous: tuple[memoryview, list[str]] | None = None

    def decode(self, head: bytes, view: memoryview, start: int, stop: int) -> str:
        """Decode the long data value ``view[start:stop]``, reusing the previous
        value's text where the bytes prove it exact (see ``growing_tail``).

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
        tail = self.tail
        previous = self._previous
        if previous is not None:
            stem, pieces = previous
            shared = len(stem)
            if (
                stop - start > shared
                and head.startswith(stem, start)
                and not 0x80 <= head[start + shared] < 0xC0
            ):
                new = str(view[start + shared : stop], "utf-8", "replace")
                pieces.append(new)
                value = "".join(pieces)
                if stop - start - shared >= tail and head[stop - tail : stop].isascii():
                    pieces[-1] = new[: len(new) - tail]
                    if len(pieces) > _MAX_PIECES:
                        pieces[:] = ["".join(pieces)]
                    self._previous = (view[start : stop - tail], pieces)
                else:
                    self._previous = None
                return value
        value = str(view[start:stop], "utf-8", "replace")
        if (
            stop - start >= _REUSE_FROM
            # ASCII text decodes about as fast as it copies: nothing to save.
            and not value.isascii()
            and head[stop - tail : stop].isascii()
        ):
            self._previous = (view[start : stop - tail], [value[: len(value) - tail]])
        else:
            self._previous = None
        return value
