"""An Extension holds its text as the grower's list of pieces and a count.

The grower hands each proven value over as an :class:`Extension`: its new
text less the tail, the tail's bytes, and ``parts[:count]`` (the grower's own
list, which grows past ``count`` and is replaced, not changed, when it is
joined).  So every Extension must keep its text however many values come
after it, and the content decoder, which gathers the Extension texts of a
call and builds their deltas later, must keep the order of all changes.
Fed whole, at fixed cuts and at random cuts, with the pieces' cap small and
as shipped.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gptalk_proto as g
import gptalk_proto.sse._growing as growing_module
from gptalk_proto import SSEParser
from gptalk_proto.sse._growing import Extension, whole_data
from gptalk_proto.testing._reference_sse import reference_parse

from .test_credentials_content import reference_changes

_TEXT = 'caf\u00e9 \u2713 "q" \\ \n plain words ' * 300


def _datas(count: int, ascii_only: bool, step: int = 7) -> list[str]:
    return [
        json.dumps({"content": _TEXT[: 2500 + step * n]}, ensure_ascii=ascii_only)
        for n in range(count)
    ]


def _stream(datas: list[str], ends: bytes) -> bytes:
    return b"".join(b"data: " + d.encode() + b"\n\n" for d in datas).replace(b"\n", ends)


def _feed(stream: bytes, cuts: list[int]) -> tuple[list[g.SSEEvent], list[object]]:
    # As the chat does: the decoder follows the parser's Extensions, and
    # each read's values are decoded in one call.
    parser = SSEParser(growing_tail=g.ContentDecoder.growing_tail)
    decoder = g.ContentDecoder()
    assert parser._grower is not None
    decoder.follow_extensions(parser._grower)
    events: list[g.SSEEvent] = []
    out: list[object] = []
    start = 0
    for cut in [*sorted(c % (len(stream) + 1) for c in cuts), len(stream)]:
        got = parser.feed(stream[start:cut])
        start = max(start, cut)
        events += got
        decoder.decode_into([e.data for e in got], out)
    return events, out


@pytest.mark.parametrize("cap", [1, 2, 32])
@pytest.mark.parametrize("ends", [b"\n", b"\r\n"])
@pytest.mark.parametrize("ascii_only", [False, True])
def test_every_extension_keeps_its_text(
    cap: int, ends: bytes, ascii_only: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(growing_module, "_MAX_PIECES", cap)
    datas = _datas(80, ascii_only)
    stream = _stream(datas, ends)
    expected = reference_parse(stream)[0]
    for cuts in ([], list(range(0, len(stream), 4096)), list(range(0, len(stream), 997))):
        events, out = _feed(stream, cuts)
        # Every Extension's text, read only now (80 values later for the
        # first ones): the grower's list went on growing, and was replaced
        # at each join past the cap.
        assert [whole_data(event) for event in events] == expected
        assert out == reference_changes(datas)
    whole, _ = _feed(stream, [])
    # (Typed str for the parser's sake: see GrowingValues.decode.)
    values: list[object] = [e.data for e in whole]
    extensions = [value for value in values if isinstance(value, Extension)]
    # (The shortcut ran, past the cap's joins, or this proves nothing.)
    assert len(extensions) == len(datas) - 1 > 2 * cap
    for ext in extensions:
        assert ext.tail == b'"}'
        assert ext.text().endswith(ext.new + '"}')
        assert ext.before is None  # taken by the decoder


@settings(max_examples=60, deadline=None)
@given(
    cuts=st.lists(st.integers(0, 10**6), max_size=12),
    cap=st.sampled_from([1, 3, 32]),
    ascii_only=st.booleans(),
    ends=st.sampled_from([b"\n", b"\r\n"]),
)
def test_extensions_at_random_cuts(
    cuts: list[int], cap: int, ascii_only: bool, ends: bytes
) -> None:
    datas = _datas(40, ascii_only, step=11)
    stream = _stream(datas, ends)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(growing_module, "_MAX_PIECES", cap)
        events, out = _feed(stream, cuts)
    assert [whole_data(event) for event in events] == reference_parse(stream)[0]
    assert out == reference_changes(datas)


@pytest.mark.parametrize("ascii_only", [False, True])
def test_changes_keep_their_order_in_one_call(ascii_only: bool) -> None:
    # Extensions, then a rewrite (a value that does not extend the one
    # before: text, decoded in full), then Extensions of the new text, then
    # one whose piece does not decode alone (a lone low surrogate escape,
    # which would pair in a full decode): all in one decode_into call, whose
    # gathered deltas must go out before each change of the general way.
    first = _datas(6, ascii_only)
    rewritten = [
        json.dumps({"content": "Other " + _TEXT[: 2600 + 5 * n]}, ensure_ascii=ascii_only)
        for n in range(5)
    ]
    surrogate = rewritten[-1][:-2] + '\\udc00 tail"}'
    datas = [*first, *rewritten, surrogate, surrogate[:-2] + 'more"}']
    # Fed whole: one read, its values decoded in one call.
    events, out = _feed(_stream(datas, b"\n"), [])
    values: list[object] = [e.data for e in events]  # (see above)
    kinds = [type(value) for value in values]
    assert kinds[len(first)] is str  # the rewrite
    assert kinds.count(Extension) == len(datas) - 2
    assert out == reference_changes(datas)
    assert any(isinstance(change, g.TextRewritten) for change in out)
