"""Cumulative content to deltas.

Every GPTalk event carries the whole reply so far: ``{"content": "<all of
it>"}``.  A reply of N bytes in E events is about N*E/2 bytes of JSON, and
decoding all of it, as the original client did, costs time quadratic in the
reply.  But event k's data is event k-1's data with text inserted before the
closing ``"}``; only that inserted piece is new.  :class:`ContentDecoder`
decodes just that piece when it can prove the shortcut exact, and falls back
to a full ``json.loads`` otherwise.  :func:`decode_content` is the plain
reference the property tests compare it with.
"""

from __future__ import annotations

import json
import json.decoder
from collections import deque
from collections.abc import Callable, Iterable
from itertools import repeat
from typing import Any

from ._errors import RemoteProtocolError, excerpt
from ._events import TextDelta, TextRewritten
from .sse._event import SSEEvent
from .sse._growing import Extension, GrowingValues

__all__ = ["ContentDecoder", "decode_content"]

# The two spellings of the one-key object the service sends, up to the
# opening quote of the content string.
_PREFIXES = ('{"content":"', '{"content": "')
_TAIL = '"}'
_TAIL_BYTES = _TAIL.encode()


def _load(data: str) -> dict[str, Any]:
    try:
        value = json.loads(data)
    # RecursionError: data nested thousands deep is the peer's doing.
    except (ValueError, RecursionError):
        raise RemoteProtocolError(
            f"expected JSON with 'content' in a stream event, got {excerpt(data)}"
        ) from None
    if not isinstance(value, dict) or not isinstance(value.get("content"), str):
        raise RemoteProtocolError(
            f"expected a JSON object with a str 'content' in a stream event, got {excerpt(data)}"
        )
    return value


def decode_content(data: str) -> str:
    """The reference: decode one event's data in full and return its content."""
    content: str = _load(data)["content"]
    return content


#: Cap on the characters of new events kept apart from the old line (see
#: ContentDecoder._gap), before they are joined to it: each event compares and
#: extends at most this much more than its own new text, and a join (a copy of
#: the line) comes once every _MAX_GAP characters of reply, not every event.
#: (Sooner while raw is shorter than that: see _gap_limit.)
_MAX_GAP = 4096


def _gap_limit(raw: str | None) -> int:
    """How long the gap may grow before it is joined to ``raw``: at most
    _MAX_GAP, and at most raw's length, so that a short raw (the first
    event's line) is soon the line's longer part.  Two strings of different
    widths (an ASCII first line, then text with a character past U+00FF)
    compare a character at a time in CPython, where equal widths compare
    with memcmp; joins while raw doubles copy O(line) characters in all."""
    return _MAX_GAP if raw is None or len(raw) > _MAX_GAP else len(raw)


# json's C string scanner (the stubs do not list it): (text, index after the
# opening quote) -> (the string, index after its closing quote).
_scanstring: Callable[[str, int], tuple[str, int]] = vars(json.decoder)["scanstring"]

# Built once per event: skip NamedTuple's Python-level __new__.
_new = tuple.__new__


def _flush(texts: list[str], pieces: list[str], out: list[Any] | deque[Any]) -> None:
    """A TextDelta for each of ``texts`` onto ``out``, built in C (a call
    of ``tuple.__new__`` per text, by ``map``: no Python step per event),
    and the texts onto the reply's ``pieces``."""
    pieces += texts
    out.extend(map(_new, repeat(TextDelta), zip(texts)))


class ContentDecoder:
    """Decodes successive cumulative events; keeps the reply so far.

    :meth:`decode` returns the new whole text for one event's data.  Results
    equal :func:`decode_content`'s for every input (a differential property
    test holds it to that).
    """

    __slots__ = ("_gap", "_known", "_last", "_links", "_pieces", "_raw", "_text")

    #: What the event stream's parser is told (``SSEParser(growing_tail=...)``):
    #: each event is the previous one with text inserted before its last two
    #: bytes, the closing ``"}``, so the parser need decode only the new text.
    growing_tail = len(_TAIL)

    def __init__(self) -> None:
        # When set, the previous event's data (_last) was exactly PREFIX +
        # string body + '"}' of a one-key object, so anything inserted before
        # its '"}' extends the content string.  _last[:_known] is that data
        # without its '"}' (the old line).  To compare an event with it at no
        # copy of the whole line, the old line is kept in two parts, _raw +
        # _gap: _gap collects the few new characters of each event and joins
        # _raw only once it is over _MAX_GAP (see decode_into).  An event the
        # parser proved (see follow) is not compared: it only moves _known,
        # and _gap is then None (_raw is still a prefix of the old line) until
        # an event needs the text again.
        self._raw: str | None = None
        self._gap: str | None = ""
        self._known = 0
        # The previous event's data, and the parser's proofs that values
        # extend the one before (see follow()).
        self._last: str | Extension | None = None
        self._links: list[tuple[str, str | Extension]] | None = None
        self._pieces: list[str] = []
        self._text = ""

    def follow(self, grower: GrowingValues) -> None:
        """Take the event stream parser's proofs that a value extends the one
        before (``SSEParser(growing_tail=...)`` compared their bytes): such an
        event's text is then not compared again."""
        if grower.tail == len(_TAIL):
            self._links = grower.keep_links()

    def follow_extensions(self, grower: GrowingValues) -> None:
        """:meth:`follow`, and more: the parser then hands over each event it
        proved extends the one before as an
        :class:`~gptalk_proto.sse._growing.Extension` (its data not joined:
        one copy of the whole value less per event), which
        :meth:`decode_into` takes in place of the data.  For a parser whose
        events only this decoder reads (the chat's own)."""
        if grower.tail == len(_TAIL):
            self._links = grower.keep_links()
            grower.hand_extensions()

    @staticmethod
    def release(events: Iterable[SSEEvent]) -> None:
        """Cut the link to the value before of each Extension among
        ``events`` that is not a "message" event's (after
        :meth:`follow_extensions`): the ones the chat does not decode (typed
        events are not reply content).  The grower's last value holds the
        last of them, so a run of such events extending each other kept
        every one alive, with the piece lists they name (a hostile stream
        held about a thirtieth of what it sent).  The next message event's
        Extension, whose ``before`` was one of them, never was this decoder's
        last value: it goes the general way with its link cut or not."""
        for event in events:
            data: str | Extension = event[1]  # (typed str: see GrowingValues.decode)
            if type(data) is Extension and event[0] != "message":
                data.before = None

    @staticmethod
    def _find_link(
        links: list[tuple[str, str | Extension]], data: str, last: str | Extension | None
    ) -> bool:
        # The proof for data further down (the consumer skipped values): the
        # older ones go with it.
        for index, (built, before) in enumerate(links):
            if built is data:
                del links[: index + 1]
                return before is last
        return False

    @property
    def text(self) -> str:
        """The whole reply so far."""
        if self._pieces:
            self._text += "".join(self._pieces)
            self._pieces.clear()
        return self._text

    def decode(self, data: str) -> TextDelta | TextRewritten | None:
        """Decode one event's data; return what it changed.

        A :class:`TextDelta` when the new content extends the old, ``None`` when
        it is the same, and a :class:`TextRewritten` when the service rewrote
        earlier text (after which :attr:`text` is the new content).
        """
        out: list[TextDelta | TextRewritten] = []
        self.decode_into((data,), out)
        return out[0] if out else None

    def decode_into(self, datas: Iterable[str | Extension], out: list[Any] | deque[Any]) -> None:
        """Decode successive events' data, appending what each changed to ``out``.

        The same changes, in the same order, as :meth:`decode` called on each
        (``None`` results left out): one call for the events of one read, so
        each event costs no call of its own.  On an invalid event the changes
        of the events before it are in ``out`` when the error is raised.
        An :class:`~gptalk_proto.sse._growing.Extension` (see
        :meth:`follow_extensions`) counts as the data whose text it holds.
        """
        # The decoder's state in locals for the loop (stored back below, and
        # before any event goes the general way).
        raw = self._raw
        gap = self._gap
        known = self._known
        last = self._last
        links = self._links
        pieces = self._pieces
        limit = _gap_limit(raw)
        append = out.append
        # The texts the loop decoded by its shortcuts, not yet in out and
        # pieces: each event's TextDelta built later, in C (see _flush),
        # before anything else goes in (a full decode, which reads the text,
        # or the end).
        taken: list[str] = []
        try:
            for item in datas:
                added: str | None
                if type(item) is Extension:
                    if raw is not None and item.before is last and item.tail == _TAIL_BYTES:
                        # The parser proved the value is all of the one it
                        # handed over before (this decoder's last data) but
                        # its last two characters, then item.new, then the
                        # closing '"}': the old line (see below), then what
                        # was inserted.  The common event of a long reply,
                        # its steps all here (the tests as in the general
                        # way below, where they are explained).
                        item.before = None  # taken: the chain of values cut (see Extension)
                        suffix = item.new
                        if "\\" not in suffix and '"' not in suffix and suffix.isprintable():
                            added = suffix
                        else:
                            try:
                                added, stop = _scanstring(suffix + '"', 0)
                            except ValueError:
                                added = None
                            else:
                                if stop != len(suffix) + 1 or (
                                    added and "\udc00" <= added[0] <= "\udfff"
                                ):
                                    added = None
                        if added is not None:
                            # The next proof needs no text: the gap is left
                            # behind (see below), no copy now.
                            gap = None
                            known += len(suffix)
                            last = item
                            if added:
                                taken.append(added)
                            continue
                        if taken:
                            _flush(taken, pieces, out)
                            taken = []
                        # Its piece does not decode alone: the full decode
                        # decides (below, with no compare: it was proved).
                        data = item.text()
                        # The Extension itself, not its text: the next one's
                        # ``before`` (else every later one went the general
                        # way, its text joined and decoded in full).
                        last = item
                        raw, change = self._reload(data)
                        gap = ""
                        limit = _gap_limit(raw)
                        known = len(raw) if raw is not None else 0
                        if change is not None:
                            append(change)
                        continue
                    item.before = None  # (as above)
                    data = item.text()  # the general way, with its whole text
                else:
                    data = item  # type: ignore[assignment]  # (not an Extension: a str)
                # What the next Extension's ``before`` is when it extends this
                # one: the Extension (see above), or the str.
                given = item
                if raw is not None:
                    # The old line is last[:known] (see __init__).
                    size = len(data)
                    linked = False
                    if links:
                        # The parser built data from the previous value, whose
                        # bytes it compared: data starts with last[:-2] (the
                        # old line) if that previous value is this decoder's
                        # last data.  Nearly always the oldest proof is this
                        # event's: taken without a loop.
                        built, before = links[0]
                        if built is data:
                            del links[0]
                            linked = before is last
                        elif len(built) < size:
                            # Values grow: a shorter oldest proof may be one
                            # for a value this decoder was not given, with
                            # data's further down.
                            linked = self._find_link(links, data, last)
                        # Else data's proof is not kept (the parser keeps
                        # MAX_LINKS), and every proof kept is for a later
                        # value: no search; the text is compared below.
                    if gap is None and not linked:
                        # Proven events since the last compare left the gap
                        # behind: raw extended to the whole old line (a copy
                        # of the line, once per run of proven events).
                        assert last is not None  # (raw is a prefix of it)
                        line = last if isinstance(last, str) else last.text()
                        raw = raw + line[len(raw) : known]
                        gap = ""
                        limit = _gap_limit(raw)
                    if (
                        size >= known + 2
                        and (
                            linked
                            # Compared in place (no copy of data).
                            or (
                                gap is not None
                                and data.startswith(raw)
                                and data.startswith(gap, len(raw))
                            )
                        )
                        # Ends with '"}' (two characters read, cheaper than
                        # endswith's call; size >= 2 here).
                        and data[-1] == "}"
                        and data[-2] == '"'
                    ):
                        suffix = data[known:-2]
                        # Nothing to unescape: no quote, no backslash, and
                        # printable (so no control character, which JSON
                        # forbids raw in strings; other unprintable text goes
                        # the escaped way, which decides it exactly).  Three
                        # C-level tests cost less than a regular expression.
                        if "\\" not in suffix and '"' not in suffix and suffix.isprintable():
                            added = suffix
                        else:
                            # Escapes (about 60% of the events of a UTF-8
                            # reply: no call for them).  The piece decodes on
                            # its own because the old body ended on a whole
                            # escape: json.loads('"' + suffix + '"') without
                            # its Python-level layers (5 times faster on a
                            # short piece), the C string scanner, and the
                            # whole piece must be one string (a stray quote
                            # makes it invalid).  Else None: the full decode
                            # below decides.
                            try:
                                added, stop = _scanstring(suffix + '"', 0)
                            except ValueError:
                                added = None
                            else:
                                # A piece opening with a low surrogate escape
                                # would pair with a high surrogate ending the
                                # old text in a full decode (one character),
                                # but not when decoded alone (two).
                                if stop != len(suffix) + 1 or (
                                    added and "\udc00" <= added[0] <= "\udfff"
                                ):
                                    added = None
                        if added is not None:
                            # The new data[:-2] is the old line + suffix.
                            if linked:
                                # The next proof needs no text: the gap is
                                # left behind (see above), no copy now.
                                gap = None
                            elif gap is not None:
                                # Joining raw + gap at every event would copy
                                # the whole line each time (a third of the
                                # client's CPU on long replies); the gap is
                                # joined to raw once it passes _MAX_GAP, so
                                # each event copies O(gap) characters.
                                gap += suffix
                                if len(gap) > limit:
                                    # Built by appending (slicing a large str scans it).
                                    raw = raw + gap
                                    gap = ""
                                    limit = _gap_limit(raw)
                            known = size - 2
                            last = given
                            if added:
                                taken.append(added)  # (its TextDelta: see taken)
                            continue
                if taken:
                    _flush(taken, pieces, out)  # (before _reload reads the text)
                    taken = []
                last = given
                raw, change = self._reload(data)
                gap = ""
                limit = _gap_limit(raw)
                known = len(raw) if raw is not None else 0
                if change is not None:
                    append(change)
        finally:
            if taken:
                _flush(taken, pieces, out)
            self._raw = raw
            self._gap = gap
            self._known = known
            self._last = last

    def _reload(self, data: str) -> tuple[str | None, TextDelta | TextRewritten | None]:
        # The general way: decode data in full; return the new _raw (see
        # __init__) and the change.
        value = _load(data)
        content: str = value["content"]
        one_key = len(value) == 1
        raw = data[:-2] if one_key and data.startswith(_PREFIXES) and data.endswith(_TAIL) else None
        old = self.text
        if content.startswith(old):
            added = content[len(old) :]
            if not added:
                return raw, None
            self._pieces.append(added)
            return raw, _new(TextDelta, (added,))
        self._text = content
        return raw, TextRewritten(content, old)
