"""How deep a JSON text nests, found in linear time before it is parsed.

``json.loads`` recurses once per level of nesting: ``b"[" * 5000`` raises
``RecursionError`` (and a deeper stack, in a deeper caller, fails sooner).
Peers send GPTalk's JSON, which nests two levels at most; a text that nests
deeper than a named cap is refused before the parser sees it.
"""

from __future__ import annotations

import re
from itertools import accumulate

__all__ = ["MAX_JSON_DEPTH", "json_depth", "json_too_deep"]

#: Levels of ``[`` / ``{`` nesting a peer's JSON may have.  GPTalk's bodies
#: nest two levels at most; 32 leaves room for any sane extension and stays
#: far below the interpreter's recursion limit (1000 frames by default),
#: wherever on the stack the parser is called.
MAX_JSON_DEPTH = 32

# A JSON string, and also the rest of the text when a string never ends:
# after the greedy loops the next byte is either an unescaped quote, the end,
# or a lone backslash at the end, so the match never fails and never
# backtracks (no quadratic rescans of an unterminated string).
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\\?\Z)', re.DOTALL)
_NOT_BRACKETS = bytes(sorted(set(range(256)) - set(b"[]{}")))
_STEP = [0] * 256
for _open, _close in (b"[]", b"{}"):
    _STEP[_open], _STEP[_close] = 1, -1
del _open, _close


def json_depth(data: bytes) -> int:
    """The deepest nesting of ``[`` and ``{`` outside strings in ``data``.

    ``data`` is UTF-8 (in which no byte of a multi-byte character is ASCII,
    so quotes, backslashes and brackets are found bytewise); refuse other
    encodings before parsing, as RFC 8259 section 8.1 allows ("JSON text
    exchanged between systems that are not part of a closed ecosystem MUST be
    encoded using UTF-8").  Exact for valid JSON; for invalid JSON, a number
    the parser would fail on anyway.  Linear in ``len(data)``: strings are dropped by one regular
    expression that cannot backtrack, the brackets left are summed in C.
    """
    brackets = _STRING.sub(b"", data).translate(None, _NOT_BRACKETS)
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0)


def json_too_deep(data: bytes, max_depth: int = MAX_JSON_DEPTH) -> bool:
    """Whether ``data`` nests deeper than ``max_depth`` (see :func:`json_depth`)."""
    # Fewer opening brackets than the cap cannot nest past it (most bodies).
    if data.count(b"[") + data.count(b"{") <= max_depth:
        return False
    return json_depth(data) > max_depth
