"""ContentDecoder.decode_into: one call per read's events, the same changes.

The chat hands the decoder every reply event of one read at once; what it
appends must equal :meth:`ContentDecoder.decode` called on each event (and the
full-decode reference), batches cut anywhere, errors included: the changes of
the events before an invalid one are delivered before its error.
"""

from __future__ import annotations

import itertools
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gptalk_proto as g
from gptalk_proto import SSEParser

from .sse_cases import bytewise, random_chunks
from .test_credentials_content import cumulative_datas, reference_changes


def batched_changes(datas: list[str], cuts: list[int]) -> list[object]:
    """decode_into over ``datas`` cut into batches at ``cuts``."""
    decoder = g.ContentDecoder()
    out: list[object] = []
    bounds = [0, *sorted({c % (len(datas) + 1) for c in cuts}), len(datas)]
    for start, stop in itertools.pairwise(bounds):
        try:
            decoder.decode_into(datas[start:stop], out)
        except g.RemoteProtocolError:
            out.append("error")
            return out
    return out


@settings(max_examples=300, deadline=None)
@given(datas=cumulative_datas(), cuts=st.lists(st.integers(0, 50), max_size=6))
def test_batches_equal_full_decode(datas: list[str], cuts: list[int]) -> None:
    assert batched_changes(datas, cuts) == reference_changes(datas)


@settings(max_examples=200, deadline=None)
@given(
    pieces=st.lists(
        st.sampled_from(
            # Unprintable text (control characters are invalid raw in JSON;
            # the rest is valid but goes the escaped way), escapes, quotes.
            [
                "a",
                "é",
                "\u2028",
                "\x7f",
                "\xa0",
                "\u200b",
                "\x01",
                "\n",
                '"',
                "\\",
                "\\n",
                "\\u00e9",
            ]
        ),
        max_size=12,
    ),
    cuts=st.lists(st.integers(0, 20), max_size=4),
)
def test_batches_on_unprintable_and_escaped_pieces(pieces: list[str], cuts: list[int]) -> None:
    datas = []
    body = ""
    for piece in pieces:
        body += piece
        datas.append('{"content": "' + body + '"}')
    assert batched_changes(datas, cuts) == reference_changes(datas)


def test_changes_before_an_invalid_event_are_delivered() -> None:
    datas = ['{"content": "a"}', '{"content": "ab"}', '{"content": "ab\x01"}', '{"content": "abc"}']
    decoder = g.ContentDecoder()
    out: list[object] = []
    with pytest.raises(g.RemoteProtocolError):
        decoder.decode_into(datas, out)
    assert out == [g.TextDelta("a"), g.TextDelta("b")]
    assert decoder.text == "ab"


def test_decode_is_decode_into_of_one() -> None:
    decoder = g.ContentDecoder()
    assert decoder.decode('{"content": "x"}') == g.TextDelta("x")
    assert decoder.decode('{"content": "x"}') is None
    assert decoder.decode('{"content": "y"}') == g.TextRewritten("y", "x")


def proof_stream(ascii_style: bool) -> tuple[bytes, str]:
    """Long growing values (the parser reuses their text and keeps proofs),
    escapes and non-ASCII in the new pieces; and the reply."""
    text = "é" * 1100
    blocks = []
    for i in range(40):
        text += f' "q{i}" \\ ✓\n'[: 1 + i % 9]
        value = json.dumps({"content": text}, ensure_ascii=ascii_style).encode()
        blocks.append(b"data: " + value + b"\n\n")
    return b"".join(blocks) + b"data: [DONE]\n\n", text


def proof_changes(reads: list[bytes]) -> tuple[list[object], list[str], str]:
    # Every read's reply events in one decode_into call, as the chat does.
    parser = SSEParser(growing_tail=g.ContentDecoder.growing_tail)
    decoder = g.ContentDecoder()
    grower = parser._grower
    assert grower is not None
    decoder.follow(grower)
    seen: list[str] = []
    out: list[object] = []
    for read in reads:
        batch = [e.data for e in parser.feed(read) if e.data != "[DONE]"]
        seen += batch
        decoder.decode_into(batch, out)
    return out, seen, decoder.text


@pytest.mark.parametrize("ascii_style", [False, True])
def test_batches_with_the_parsers_proofs_whole_and_bytewise(ascii_style: bool) -> None:
    stream, text = proof_stream(ascii_style)
    for reads in ([stream], bytewise(stream)):
        out, seen, got = proof_changes(reads)
        assert len(seen) == 40
        assert out == reference_changes(seen)
        assert got == text


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), ascii_style=st.booleans())
def test_batches_with_the_parsers_proofs_at_random_splits(seed: int, ascii_style: bool) -> None:
    stream, text = proof_stream(ascii_style)
    out, seen, got = proof_changes(random_chunks(stream, seed))
    assert len(seen) == 40
    assert out == reference_changes(seen)
    assert got == text


@pytest.mark.parametrize("ensure_ascii", [False, True])
def test_gap_joined_while_the_old_line_is_short(ensure_ascii: bool) -> None:
    # The first line is short and ASCII, the text after it wide (past
    # U+00FF): the gap is joined to it once it is longer than it (so the two
    # compared strings are of one width), well before _MAX_GAP; the changes
    # stay the reference's, event by event and in any batches.
    text = "ab" + "\u2713xyz \u00e9" * 40
    contents = [text[:size] for size in range(2, len(text) + 1, 3)]
    datas = [json.dumps({"content": c}, ensure_ascii=ensure_ascii) for c in contents]
    decoder = g.ContentDecoder()
    out: list[object] = []
    first_raw = None
    for data in datas:
        decoder.decode_into([data], out)
        first_raw = first_raw or decoder._raw
        assert decoder._raw is not None
        # The gap never outgrows raw (the limit), and raw + gap is the old line.
        assert decoder._gap is not None
        assert len(decoder._gap) <= len(decoder._raw)
        assert decoder._raw + decoder._gap == data[:-2]
    assert first_raw is not None
    assert decoder._raw is not None
    assert len(decoder._raw) > len(first_raw)  # joined
    assert out == reference_changes(datas)
    for cuts in ([1], [1, 5, 6, 30], [2, 17]):
        assert batched_changes(datas, cuts) == reference_changes(datas)
