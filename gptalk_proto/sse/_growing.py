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
#: less than the Python steps that prove a reuse exact (measured on 1 KB
#: cumulative replies, reuse made the parser slower).
_REUSE_FROM = 2048


def _ends_whole(raw: memoryview, end: int, begin: int) -> bool:
    """Whether ``raw[begin:end]`` ends with a whole UTF-8 sequence (valid or
    not): after it, a decoder starts a new character."""
    index, continuation = end - 1, 0
    while index >= begin and 0x80 <= raw[index] <= 0xBF and continuation < 3:
        index -= 1
        continuation += 1
    if index < begin:
        return False
    lead = raw[index]
    if lead < 0x80:
        return continuation == 0
    if 0xC2 <= lead <= 0xDF:
        return continuation == 1
    if 0xE0 <= lead <= 0xEF:
        return continuation == 2
    if 0xF0 <= lead <= 0xF4:
        return continuation == 3
    return False


class GrowingValues:
    """The decoding of successive long data values of one stream."""

    __slots__ = ("_previous", "tail")

    def __init__(self, tail: int) -> None:
        if not 0 < tail <= MAX_GROWING_TAIL:
            raise LocalProtocolError(f"growing_tail must be 0 to {MAX_GROWING_TAIL}")
        self.tail = tail
        # The last non-ASCII value's bytes without its tail (a view of the
        # buffer it was parsed from: no copy, and the buffer is at most a
        # line, within the parser's cap, or one chunk), and their text.
        self._previous: tuple[memoryview, str] | None = None

    def decode(self, head: bytes, view: memoryview, start: int, stop: int) -> str:
        """Decode the long data value ``view[start:stop]``, reusing the previous
        value's text where the bytes prove it exact (see ``growing_tail``).

        When the value starts with the previous one's bytes up to its tail,
        and those ended on a whole UTF-8 sequence before an ASCII tail, a
        decoder is at a character boundary there in both values: the text is
        the previous text up to its tail plus the rest decoded on its own.  A
        reply of N bytes then costs O(N) decoding instead of O(N x events).
        """
        if stop - start < _REUSE_FROM:
            self._previous = None
            return str(view[start:stop], "utf-8", "replace")
        tail = self.tail
        previous = self._previous
        new: str | None = None
        if (
            previous is not None
            and stop - start >= len(previous[0])
            and head.startswith(previous[0], start)
        ):
            new = str(view[start + len(previous[0]) : stop], "utf-8", "replace")
            value = previous[1] + new
        else:
            value = str(view[start:stop], "utf-8", "replace")
        shared = stop - tail
        if (
            # ASCII text decodes about as fast as it copies: nothing to save.
            not value.isascii()
            and shared > start
            and head[shared:stop].isascii()
            and _ends_whole(view, shared, start)
        ):
            # This text without its tail's characters (one each, being ASCII),
            # built by appending to the old one rather than slicing the new: a
            # slice of a large non-latin-1 str scans for its widest character.
            if new is not None and len(new) >= tail:
                stem = previous[1] + new[: len(new) - tail]  # type: ignore[index]
            else:
                stem = value[: len(value) - tail]
            self._previous = (view[start:shared], stem)
        else:
            self._previous = None
        return value
