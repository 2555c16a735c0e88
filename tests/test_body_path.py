"""The body path's copy-saving shortcuts change no result (differential tests).

* :class:`ContentDecoder` keeps the old line as text plus a small gap
  (``_MAX_GAP``), so an event copies only its new text; the parser's growing
  values keep their text as pieces (``_MAX_PIECES``).  With either joined at
  any size, results equal the plain decode, on hostile inputs too.
* :meth:`ContentDecoder.follow`: the decoder takes the parser's proofs that a
  value extends the one before instead of comparing the text; results equal
  the plain decode, also when typed events break the chain.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gptalk_proto as g
import gptalk_proto._content as content_module
import gptalk_proto.sse._growing as growing_module
from gptalk_proto import SSEParser
from gptalk_proto.sse._growing import GrowingValues
from gptalk_proto.testing._reference_sse import reference_parse

from .sse_cases import cut_at, feed_all
from .test_credentials_content import cumulative_datas, decoder_changes, reference_changes
from .test_sse_growing import growing_streams


@pytest.mark.parametrize("gap", [0, 1, 3, 64])
@settings(max_examples=150, deadline=None)
@given(datas=cumulative_datas())
def test_content_decoder_with_any_gap_equals_full_decode(gap: int, datas: list[str]) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(content_module, "_MAX_GAP", gap)
        assert decoder_changes(datas) == reference_changes(datas)


@pytest.mark.parametrize("gap", [0, 1, 5])
@settings(max_examples=150, deadline=None)
@given(bodies=st.lists(st.text(max_size=20), max_size=8), data=st.data())
def test_content_decoder_gap_on_hostile_suffixes(
    gap: int, bodies: list[str], data: st.DataObject
) -> None:
    # Escapes, surrogate halves and stray quotes glued at the reuse boundary,
    # and rewrites that are no prefix of the line before.
    glue = st.sampled_from(
        ['"', "\\", '\\"', '","x":"', "\\ud83d", "\\ude00", "\\u00e9", "}", "\\u", "\\ud8"]
    )
    datas = ['{"content": "']
    for body in bodies:
        if data.draw(st.integers(0, 5)) == 0:
            datas.append('{"content": "' + body)  # a rewrite
        else:
            datas.append(datas[-1] + body + data.draw(glue))
    candidates = [d + '"}' for d in datas]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(content_module, "_MAX_GAP", gap)
        assert decoder_changes(candidates) == reference_changes(candidates)


def test_surrogate_pair_split_at_a_gap_join() -> None:
    datas = ['{"content": "' + "a" * 3000 + '\\ud83d"}']
    datas.append(datas[0][:-2] + '\\ude00"}')
    datas.append(datas[1][:-2] + '\\ud83d"}')
    datas.append(datas[2][:-2] + '\\ude00b"}')
    for gap in (0, 6, 4096):
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(content_module, "_MAX_GAP", gap)
            assert decoder_changes(datas) == reference_changes(datas)


@pytest.mark.parametrize("pieces", [0, 1, 7])
@settings(max_examples=100, deadline=None)
@given(case=growing_streams(), data=st.data())
def test_growing_reuse_with_any_pieces_cap_matches_the_reference(
    pieces: int, case: tuple[bytes, int], data: st.DataObject
) -> None:
    stream, tail = case
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(growing_module, "_MAX_PIECES", pieces)
        # Events, last event ID and retry, as the reference parser has them.
        assert feed_all(cut_at(stream, cuts), SSEParser(growing_tail=tail)) == reference_parse(
            stream
        )


# -- the parser's proofs (GrowingValues.keep_links) taken by ContentDecoder.follow --

#: Long non-ASCII content, so values pass the parser's reuse threshold.
_LONG = "caf\u00e9 \u2713 " * 400


@st.composite
def _long_cumulative_datas(draw: st.DrawFn) -> list[str]:
    """Long event datas that grow, with hostile glue at the reuse boundary:
    escapes and surrogate halves split between events, stray quotes, other
    keys, rewrites that are no prefix, and junk."""
    glue = st.sampled_from(
        ['"', "\\", '\\"', '","x":"', "\\ud83d", "\\ude00", "\\u00e9", "}", "\u2713", "a", "\\n"]
    )
    opening = draw(st.sampled_from(['{"content": "', '{"content":"']))
    datas = [opening + json.dumps(_LONG, ensure_ascii=draw(st.booleans()))[1:-1]]
    for _ in range(draw(st.integers(0, 10))):
        kind = draw(st.integers(0, 7))
        if kind == 0:
            datas.append(opening + draw(st.text(max_size=20)) + _LONG)  # a rewrite
        elif kind == 1:
            datas.append(draw(st.text(max_size=20)))  # junk
        else:
            datas.append(datas[-1] + draw(st.text(max_size=6)) + draw(glue))
    return [d + '"}' for d in datas]


def typed_stream(datas: list[str], typed: list[bool]) -> bytes:
    """One event per data, LF line ends; those marked in ``typed`` under
    ``event: other`` (lone surrogates kept as they are, to be replaced)."""
    return b"".join(
        (b"event: other\n" if kind else b"")
        + b"data: "
        + d.encode("utf-8", "surrogatepass")
        + b"\n\n"
        for d, kind in zip(datas, typed, strict=True)
    )


def _changes_through_the_parser(
    datas: list[str], typed: list[bool], cuts: list[int], follow: bool
) -> list[object]:
    # Typed events are skipped, as the chat skips them: the parser's chain of
    # values then runs through values the decoder never saw.
    stream = typed_stream(datas, typed)
    parser = SSEParser(growing_tail=g.ContentDecoder.growing_tail)
    decoder = g.ContentDecoder()
    grower = parser._grower
    if follow and grower is not None:
        decoder.follow(grower)
    out: list[object] = []
    start = 0
    for cut in [*sorted(c % (len(stream) + 1) for c in cuts), len(stream)]:
        for event in parser.feed(stream[start:cut]):
            if event.event != "message":
                continue
            try:
                change = decoder.decode(event.data)
            except g.RemoteProtocolError:
                out.append("error")
                return out
            if change is not None:
                out.append(change)
        start = max(start, cut)
    return out


def _as_parsed(datas: list[str], typed: list[bool]) -> list[str]:
    """The reply events' data as the parser decodes them (invalid UTF-8 and
    lone surrogates become replacement characters on the way)."""
    return [
        d.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
        for d, kind in zip(datas, typed, strict=True)
        if not kind
    ]


@settings(max_examples=300, deadline=None)
@given(
    datas=_long_cumulative_datas(),
    cuts=st.lists(st.integers(0, 10**6), max_size=6),
    data=st.data(),
)
def test_decoder_following_the_parser_equals_full_decode(
    datas: list[str], cuts: list[int], data: st.DataObject
) -> None:
    typed = [data.draw(st.integers(0, 4)) == 0 for _ in datas]
    # What the reference sees is what the parser decoded.
    decoded = _as_parsed(datas, typed)
    want = reference_changes(decoded)
    assert _changes_through_the_parser(datas, typed, cuts, True) == want
    assert _changes_through_the_parser(datas, typed, cuts, False) == want


@pytest.mark.parametrize(("links", "gap"), [(1, 0), (2, 3), (3, 4096)])
@settings(max_examples=150, deadline=None)
@given(
    datas=_long_cumulative_datas(),
    cuts=st.lists(st.integers(0, 10**6), max_size=6),
    data=st.data(),
)
def test_decoder_with_proofs_dropped_and_any_gap_equals_full_decode(
    links: int, gap: int, datas: list[str], cuts: list[int], data: st.DataObject
) -> None:
    # Few proofs kept (MAX_LINKS): in one read, proven events and compared
    # ones alternate, so the gap the proven ones leave behind is rebuilt from
    # the last data before a compare (at every _MAX_GAP).
    typed = [data.draw(st.integers(0, 6)) == 0 for _ in datas]
    decoded = _as_parsed(datas, typed)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(growing_module, "MAX_LINKS", links)
        patch.setattr(content_module, "_MAX_GAP", gap)
        assert _changes_through_the_parser(datas, typed, cuts, True) == reference_changes(decoded)


def test_a_compare_after_proven_events_rebuilds_the_old_line() -> None:
    # Proven events move only the decoder's length of the old line; the one
    # after them that is not proven (its proof dropped) is compared with the
    # whole old line, so a change hidden before the new text is found.
    base = '{"content": "' + _LONG
    datas = [base + '"}', base + 'a"}', base + 'ab"}']
    # The last is not an extension: a character the proven events added
    # changed (past what the decoder last compared).
    datas.append(base + 'Xbc"}')
    for links in (0, 1, 2):
        decoder = g.ContentDecoder()
        grower = GrowingValues(2)
        decoder.follow(grower)
        values = []
        for data in datas:
            raw = data.encode()
            values.append(grower.decode(raw, memoryview(raw), 0, len(raw)))
        kept = grower.keep_links()
        for _ in range(len(kept) - links):
            kept.pop()  # the later proofs dropped
        out: list[object] = []
        decoder.decode_into(values, out)
        assert out == reference_changes(values)


def test_a_proof_from_a_value_the_decoder_did_not_see_last_is_not_taken() -> None:
    # The proof names the value it was built from: with an event the decoder
    # was not shown in between (a typed event, say), it compares instead.
    decoder = g.ContentDecoder()
    grower = GrowingValues(2)
    decoder.follow(grower)
    first = '{"content": "' + _LONG + '"}'
    second = first[:-2] + 'x"}'
    values = []
    for data in (first, second, second[:-2] + 'y"}'):
        raw = data.encode()
        values.append(grower.decode(raw, memoryview(raw), 0, len(raw)))
    links = grower.keep_links()
    assert [before for _, before in links] == values[:2]
    assert decoder.decode(values[0]) == g.TextDelta(_LONG)
    assert decoder.decode(values[2]) == g.TextDelta("xy")
    assert not links  # taken, and the one before it dropped
