"""The lower long-line and reuse thresholds of a parser whose grower hands over Extensions.

Such a parser (the chat client's own: ``ContentDecoder.follow_extensions``
before its first bytes) sends lines of EXTENDS_LONG_LINE bytes and more one
by one and reuses values of EXTENDS_REUSE_FROM bytes and more; every other
parser keeps LONG_LINE and _REUSE_FROM (the parse benchmark's parser among
them, where the lower ones cost up to three quarters more time).  The
thresholds change only the way, never the events: around them (one below,
at, one above) the events must be those of a parser without a grower, fed
whole, byte by byte and at random splits.
"""

from __future__ import annotations

import itertools

import pytest

import gptalk_proto as g
from gptalk_proto import SSEParser
from gptalk_proto.sse import _growing
from gptalk_proto.sse import _parser as parser_module
from gptalk_proto.sse._growing import EXTENDS_REUSE_FROM, Extension
from gptalk_proto.sse._lines import EXTENDS_LONG_LINE, LONG_LINE
from gptalk_proto.sse._long import process_long

from .sse_cases import chunkings
from .test_chat_extensions import _changes_with_extensions, _gptalk_stream, _run_chat
from .test_credentials_content import reference_changes
from .test_growing_blocks import _outcome, _parser

#: The length of the lines of the counting tests: between the two parsers'
#: thresholds.
_MIDDLE = (EXTENDS_LONG_LINE + LONG_LINE) // 2

_PREFIX = b'data: {"content": "'


def _growing_lines(lengths: list[int], text: bytes, eol: bytes) -> bytes:
    """GPTalk-like blocks, each line (with "data: ", without its line end)
    ``lengths[i]`` bytes long, each the one before with bytes inserted before
    its closing '"}' (``text``, repeated, cut to length: ASCII, or UTF-8 whose
    characters may be cut short, which the decoder replaces)."""
    body = text * (max(lengths) // len(text) + 1)
    return b"".join(
        _PREFIX + body[: size - len(_PREFIX) - 2] + b'"}' + eol + eol for size in lengths
    )


def _whole_steps(size: int, text: bytes) -> list[int]:
    """40 line lengths from about ``size`` bytes on, each ``text`` longer
    than the one before and ending on a whole character (so that every value
    after the first is one the grower reuses)."""
    first = size // len(text) + 1
    return [len(_PREFIX) + 2 + len(text) * (first + n) for n in range(40)]


_ASCII = b'The quick brown fox \\u00e9 \\"q\\" '
_RAW = "caf\u00e9 \u2713 q ".encode()


def test_the_thresholds_are_ordered() -> None:
    # The lower one for Extensions only; a value reused is on a line that
    # goes one by one (see GrowingValues.decode_blocks), for both parsers.
    assert EXTENDS_LONG_LINE < _MIDDLE < LONG_LINE
    assert EXTENDS_REUSE_FROM == EXTENDS_LONG_LINE
    assert _growing._REUSE_FROM == LONG_LINE


def _counted(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    # The regions the parser sends one line at a time (process_long, as the
    # parser calls it).
    calls: list[int] = []

    def counting(
        self: SSEParser,
        head: bytes,
        start: int,
        size: int,
        crlf: bool = False,
        *,
        lazy: bool = False,
    ) -> object:
        calls.append(size - start)
        return process_long(self, head, start, size, crlf, lazy=lazy)

    monkeypatch.setattr(parser_module, "process_long", counting)
    return calls


@pytest.mark.parametrize("eol", [b"\n", b"\r\n"])
@pytest.mark.parametrize("text", [_ASCII, _RAW], ids=["ascii", "raw"])
def test_an_extends_parser_reuses_values_between_the_thresholds(
    eol: bytes, text: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Lines of _MIDDLE bytes and more, in one read: the region
    # goes one line at a time, and every value after the first is handed
    # over as an Extension (decoded by reuse).
    stream = _growing_lines(_whole_steps(_MIDDLE, text), text, eol)
    calls = _counted(monkeypatch)
    parser = _parser(extensions=True)
    events = parser.feed(stream)
    assert len(events) == 40
    assert calls
    assert sum(isinstance(e.data, Extension) for e in events) == 39
    assert (
        _outcome(_parser(extensions=True), [stream])[0]
        == _outcome(_parser(extensions=False), [stream])[0]
    )


@pytest.mark.parametrize("eol", [b"\n", b"\r\n"])
def test_a_plain_parser_keeps_the_higher_thresholds(
    eol: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The same lines (non-ASCII, which a plain grower does reuse from
    # _REUSE_FROM bytes on, proved by its links) through a parser whose
    # grower is followed but hands over no Extensions: the region is decoded
    # whole, no value is reused; lines over LONG_LINE are.  After a long line
    # the region goes one line at a time, each value through the grower: the
    # short ones are still not reused.
    calls = _counted(monkeypatch)
    before = b"data: " + b"x" * LONG_LINE + eol + eol
    for sizes, reused in ((_whole_steps(_MIDDLE, _RAW), 0), (_whole_steps(LONG_LINE, _RAW), 39)):
        stream = _growing_lines(sizes, _RAW, eol)
        calls.clear()
        parser = SSEParser(growing_tail=g.ContentDecoder.growing_tail)
        assert parser._grower is not None
        links = parser._grower.keep_links()
        events = parser.feed(stream)
        assert len(events) == 40
        assert not any(isinstance(e.data, Extension) for e in events)
        assert len(links) == reused
        assert bool(calls) == bool(reused)
        parser = SSEParser(growing_tail=g.ContentDecoder.growing_tail)
        assert parser._grower is not None
        links = parser._grower.keep_links()
        assert len(parser.feed(before + stream)) == 41
        assert len(links) == reused


def test_extensions_asked_for_after_the_first_bytes_keep_the_parsers_lines(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The parser's lines are fixed at its first bytes: a grower told later
    # reuses values, but the parser's short lines still go the region's way.
    calls = _counted(monkeypatch)
    stream = _growing_lines(_whole_steps(_MIDDLE, _RAW), _RAW, b"\n")
    parser = SSEParser(growing_tail=g.ContentDecoder.growing_tail)
    first = stream.index(b"\n\n") + 2
    assert len(parser.feed(stream[:first])) == 1
    assert parser._grower is not None
    g.ContentDecoder().follow_extensions(parser._grower)
    events = parser.feed(stream[first:])
    assert len(events) == 39
    assert not calls
    assert not any(isinstance(e.data, Extension) for e in events)


def _around(threshold: int, text: bytes, eol: bytes) -> bytes:
    # Lines one below, at and one above the threshold (with "data: " and,
    # for the value's threshold, without), growing a byte at a time, then by
    # a few, and a value that starts again shorter.
    lengths = [threshold - 2, threshold - 1, threshold, threshold + 1, threshold + 2]
    lengths += [threshold + 5, threshold + 6, threshold + 7, threshold + 30]
    restart = [threshold - 1, threshold, threshold + 6]
    return _growing_lines(lengths, text, eol) + _growing_lines(restart, text[::-1], eol)


@pytest.mark.parametrize("eol", [b"\n", b"\r\n"])
@pytest.mark.parametrize("text", [_ASCII, _RAW], ids=["ascii", "raw"])
@pytest.mark.parametrize(
    "threshold",
    [EXTENDS_LONG_LINE, EXTENDS_REUSE_FROM + len(b"data: ")],
    ids=["line", "value"],
)
def test_events_at_the_thresholds_are_exact(eol: bytes, text: bytes, threshold: int) -> None:
    stream = _around(threshold, text, eol)
    expected = _outcome(_parser(extensions=False), [stream])
    assert len(expected[0]) == 12
    for name, chunks in chunkings(stream, seeds=4):
        for lazy in (False, True):
            got = _outcome(_parser(extensions=True), chunks, lazy)
            assert got == expected, (name, lazy)
            got = _outcome(SSEParser(growing_tail=g.ContentDecoder.growing_tail), chunks, lazy)
            assert got == expected, (name, lazy, "plain grower")


def test_the_chats_parser_takes_the_lower_threshold(monkeypatch: pytest.MonkeyPatch) -> None:
    # The chat tells its parser's grower to hand over Extensions with the
    # response's head, before the body's first bytes: its lines between the
    # thresholds go one by one, and the deltas are the reply's.
    calls = _counted(monkeypatch)
    reply = ("caf\u00e9 \u2713 " * 200)[: _MIDDLE + 200]
    texts = [reply[:n] for n in range(_MIDDLE - 100, len(reply), 7)]
    stream = _gptalk_stream(texts)
    seen = _run_chat(
        g.Chat("hi", credentials=g.Credentials(), fingerprint="0" * 32), stream, [stream]
    )
    deltas = [e.text for e in seen if type(e) is g.TextDelta]
    assert deltas[0] == texts[0]
    assert deltas[1:] == [b[len(a) :] for a, b in itertools.pairwise(texts)]
    assert calls


@pytest.mark.parametrize("ends", [b"\n", b"\r\n"])
def test_the_decoder_follows_extensions_after_one_it_decoded_in_full(
    ends: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An Extension whose new piece does not decode alone (a low surrogate's
    # escape after a high one's: one character with the text before) is
    # decoded in full; the decoder then keeps that Extension, not its text,
    # as its last value, so the ones extending it are taken by the proof
    # (their text never joined), not each joined and decoded in full to the
    # end of the reply (the lower threshold made 8 KB raw LF chats at one
    # character per event 39% dearer through that).
    joined: list[int] = []
    text = Extension.text

    def counting(self: Extension) -> str:
        joined.append(self.count)
        return text(self)

    monkeypatch.setattr(Extension, "text", counting)
    body = "caf\\u00e9 " * (_MIDDLE // 10)
    bodies = [body, body + "\\ud83d", body + "\\ud83d\\ude00"]
    bodies += [bodies[-1] + "ab" * n for n in range(1, 12)]
    datas = ['{"content": "' + b + '"}' for b in bodies]
    got = _changes_with_extensions(datas, [False] * len(datas), [], ends)
    assert got == reference_changes(datas)
    assert len(joined) == 1
