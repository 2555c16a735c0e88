"""Adversarial cases for the chat's Extension path (see test_chat_extensions).

A hostile or merely unusual server: typed events the chat ignores, values
that shrink or are rewritten, escapes and UTF-8 cut at the new piece's edge,
lone CR line ends, multi-line data.  The chat's deltas must equal the
reference decode, and no chain of old values may stay alive.
"""

from __future__ import annotations

import itertools
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gptalk_proto as g
from gptalk_proto.sse._growing import Extension

from .test_chat_extensions import _HEAD, _run_chat
from .test_credentials_content import reference_changes


def _chat() -> g.Chat:
    return g.Chat("hi", credentials=g.Credentials(), fingerprint="0" * 32)


def _chunked(events: list[bytes]) -> bytes:
    return _HEAD + b"".join(b"%x\r\n%s\r\n" % (len(e), e) for e in events) + b"0\r\n\r\n"


def _event(text: str, kind: str | None = None, end: bytes = b"\n") -> bytes:
    data = json.dumps({"content": text}, ensure_ascii=False).encode()
    if kind == "split":
        # The JSON over two data lines (joined with a line feed: whitespace).
        return b"data: " + data[:-1] + end + b"data: }" + end + end
    head = b"event: %s%s" % (kind.encode(), end) if kind else b""
    return head + b"data: " + data + end + end


def _chain(value: object) -> int:
    depth = 0
    while isinstance(value, Extension):
        depth += 1
        value = value.before
    return depth


def test_ignored_typed_events_keep_no_chain_alive() -> None:
    # Long growing values, every third one in a typed event (its type after
    # its data line: not reply content, the chat never decodes it).  Only a
    # lone data line is handed over as an Extension; the value the parser
    # keeps as its last never holds a chain of the ones before it.
    text = "caf\u00e9 " * 2000
    datas = [json.dumps({"content": text[:n]}, ensure_ascii=False) for n in range(3000, 3600, 2)]
    typed = [i % 3 == 2 for i in range(len(datas))]
    events = [
        b"data: " + d.encode() + (b"\nevent: progress\n\n" if t else b"\n\n")
        for d, t in zip(datas, typed, strict=True)
    ]
    stream = _chunked([*events, b"data: [DONE]\n\n"])
    kept: list[object] = []
    real = g.Chat._stream

    def spy(self: g.Chat, data: bytes) -> None:
        real(self, data)
        if self._parser is not None and self._parser._grower is not None:
            kept.append(self._parser._grower._last)

    reads = [stream[i : i + 3000] for i in range(0, len(stream), 3000)]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(g.Chat, "_stream", spy)
        seen = _run_chat(_chat(), stream, reads)
    content = [d for d, t in zip(datas, typed, strict=True) if not t]
    changes = [e for e in seen if isinstance(e, (g.TextDelta, g.TextRewritten))]
    assert changes == reference_changes(content)
    assert any(isinstance(value, Extension) for value in kept)
    assert max(_chain(value) for value in kept) <= 2


_TEXT = 'caf\u00e9 \u2713 "q" \\ \n\u00e9\U0001f600' * 200


@st.composite
def hostile_texts(draw: st.DrawFn) -> list[str]:
    # Mostly growing, sometimes shrinking or rewritten, starting long.
    texts: list[str] = []
    end = draw(st.integers(2100, 2300))
    for _ in range(draw(st.integers(1, 10))):
        how = draw(st.sampled_from(["grow", "grow", "grow", "shrink", "rewrite", "same"]))
        if how == "grow":
            end = min(end + draw(st.integers(1, 12)), len(_TEXT))
            texts.append(_TEXT[:end])
        elif how == "shrink":
            end -= draw(st.integers(1, 5))
            texts.append(_TEXT[:end])
        elif how == "rewrite":
            texts.append("X" + _TEXT[1:end])
        else:
            texts.append(_TEXT[:end])
    return texts


def _expected(texts: list[str]) -> list[object]:
    return list(reference_changes([json.dumps({"content": t}, ensure_ascii=False) for t in texts]))


@settings(max_examples=60, deadline=None)
@given(
    texts=hostile_texts(),
    kinds=st.lists(
        st.sampled_from([None, None, None, "progress", "split"]), min_size=10, max_size=10
    ),
    end=st.sampled_from([b"\n", b"\r\n", b"\r"]),
    cuts=st.lists(st.integers(0, 10**6), max_size=10),
)
def test_chat_changes_equal_reference_with_hostile_streams(
    texts: list[str], kinds: list[str | None], end: bytes, cuts: list[int]
) -> None:
    events = [_event(t, k, end) for t, k in zip(texts, kinds, strict=False)]
    stream = _chunked([*events, b"data: [DONE]" + end + end])
    bounds = [0, *sorted(c % (len(stream) + 1) for c in cuts), len(stream)]
    reads = [stream[a:b] for a, b in itertools.pairwise(bounds) if b > a]
    seen = _run_chat(_chat(), stream, reads)
    content = [t for t, k in zip(texts, kinds, strict=False) if k != "progress"]
    changes = [e for e in seen if isinstance(e, (g.TextDelta, g.TextRewritten))]
    assert changes == _expected(content)
    assert seen[-1] == g.ChatDone(content[-1] if content else "")


#: A raw non-ASCII head: such values are decoded by reuse by every parser
#: (an ASCII one only by a parser that hands over Extensions).
_HEAD_TEXT = "caf\u00e9 " * 420


@pytest.mark.parametrize(
    "texts",
    [
        # \u00e9 escapes cut at every place by the value's end.
        [_HEAD_TEXT + "\\u00e9"[:k] for k in (0, 6, 7)],
        [_HEAD_TEXT + "\\u00e9"[:k] for k in range(7)],
        # A backslash right before the closing quote, then its escape.
        [_HEAD_TEXT + "x", _HEAD_TEXT + "\\\\", _HEAD_TEXT + "\\\\n"],
        [_HEAD_TEXT, _HEAD_TEXT + "\\", _HEAD_TEXT + "\\\\"],
    ],
)
def test_raw_escapes_cut_at_the_boundary(texts: list[str]) -> None:
    # Raw JSON values (not json.dumps of the text): the server's bytes grow
    # one character at a time through an escape; the invalid ones fail the
    # chat as the reference decode does.
    datas = ['{"content": "' + t + '"}' for t in texts]
    stream = _chunked([b"data: " + d.encode() + b"\n\n" for d in datas] + [b"data: [DONE]\n\n"])
    expected = reference_changes(datas)
    for reads in ([stream], [stream[i : i + 1] for i in range(len(stream))]):
        seen = _run_chat(_chat(), stream, reads)
        changes = [e for e in seen if isinstance(e, (g.TextDelta, g.TextRewritten))]
        if expected[-1] == "error":
            assert changes == expected[:-1]
            assert isinstance(seen[-1], g.RemoteProtocolError)
            # Its message quotes the data as text, never an object's repr.
            assert "Extension" not in str(seen[-1])
            assert '{"content": "caf\u00e9' in str(seen[-1])
        else:
            assert changes == expected


def test_invalid_utf8_at_the_new_piece() -> None:
    # Bytes of a character split across the boundary, or invalid ones, in the
    # new piece: replaced as the reference parser replaces them.
    base = b'{"content": "' + "\u00e9".encode() * 1100
    datas = [base + b'"}', base + b'\xc3"}', base + b'\xc3\xa9"}', base + b'\xff\xa9x"}']
    stream = _chunked([b"data: " + d + b"\n\n" for d in datas] + [b"data: [DONE]\n\n"])
    decoded = [d.decode("utf-8", "replace") for d in datas]
    for reads in ([stream], [stream[i : i + 1] for i in range(len(stream))]):
        seen = _run_chat(_chat(), stream, reads)
        changes = [e for e in seen if isinstance(e, (g.TextDelta, g.TextRewritten))]
        assert changes == list(reference_changes(decoded))


@settings(max_examples=40, deadline=None)
@given(
    steps=st.lists(st.integers(1, 6), min_size=2, max_size=12),
    cuts=st.lists(st.integers(0, 10**6), max_size=6),
)
def test_escaped_text_growing_through_escapes(steps: list[int], cuts: list[int]) -> None:
    # Every non-ASCII character (and quote, backslash, line feed) an escape
    # in the JSON (ensure_ascii): each new piece starts or ends at one, and
    # emoji are surrogate-pair escapes.  Fed whole too (the Extension path).
    # A raw non-ASCII head (so the values are decoded by reuse on every
    # parser, not only the chat's), then the growing part all escapes.
    head = "caf\u00e9 " * 400
    texts, end = [], 0
    for step in steps:
        end = min(end + step, len(_TEXT))
        texts.append(head + _TEXT[:end])
    datas = ['{"content": "' + head + json.dumps(t[len(head) :])[1:] + "}" for t in texts]
    stream = _chunked([b"data: " + d.encode() + b"\n\n" for d in datas] + [b"data: [DONE]\n\n"])
    bounds = [0, *sorted(c % (len(stream) + 1) for c in cuts), len(stream)]
    for reads in ([stream], [stream[a:b] for a, b in itertools.pairwise(bounds) if b > a]):
        seen = _run_chat(_chat(), stream, reads)
        changes = [e for e in seen if isinstance(e, (g.TextDelta, g.TextRewritten))]
        assert changes == reference_changes(datas)
        assert seen[-1] == g.ChatDone(texts[-1])
