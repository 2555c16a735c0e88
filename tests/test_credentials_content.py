"""Credentials' rules and the cumulative-content decoder."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gptalk_proto as g
from gptalk_proto.sse._growing import MAX_LINKS


def test_at_most_max_uses_and_never_past_expiry_with_margin() -> None:
    creds = g.Credentials(max_uses=5, margin=30)
    assert not creds.usable(0)
    creds.store("tok", expires_at=1000)
    for _ in range(5):
        assert creds.acquire(100) == "tok"
    assert not creds.usable(100)
    with pytest.raises(g.LocalProtocolError):
        creds.acquire(100)
    creds.store("tok2", expires_at=1000)
    assert creds.usable(969.9)
    assert not creds.usable(970)


def test_invalidate_only_the_named_token() -> None:
    creds = g.Credentials()
    creds.store("new", 1000)
    creds.invalidate("old")
    assert creds.token == "new"
    creds.invalidate("new")
    assert creds.token is None


def test_repr_never_shows_the_token() -> None:
    creds = g.Credentials()
    creds.store("s3cr3t-token-value", 1000)
    assert "s3cr3t" not in repr(creds)


def test_acquire_fresh_ignores_the_clock_but_not_the_count() -> None:
    creds = g.Credentials(max_uses=1)
    creds.store("t", expires_at=0)
    assert creds.acquire_fresh() == "t"
    with pytest.raises(g.LocalProtocolError):
        creds.acquire_fresh()


def reference_changes(datas: list[str]) -> list[object]:
    """What the decoder must produce: a full json decode per event."""
    out: list[object] = []
    text = ""
    for data in datas:
        try:
            content = g.decode_content(data)
        except g.RemoteProtocolError:
            out.append("error")
            return out
        if content.startswith(text):
            if content != text:
                out.append(g.TextDelta(content[len(text) :]))
        else:
            out.append(g.TextRewritten(content, text))
        text = content
    return out


def decoder_changes(datas: list[str]) -> list[object]:
    decoder = g.ContentDecoder()
    out: list[object] = []
    for data in datas:
        try:
            change = decoder.decode(data)
        except g.RemoteProtocolError:
            out.append("error")
            return out
        if change is not None:
            out.append(change)
    return out


json_texts = st.text(st.characters(codec="utf-8") | st.sampled_from(['"', "\\", "\n", "\x00"]))


@st.composite
def cumulative_datas(draw: st.DrawFn) -> list[str]:
    """Event datas as a server writes them, with occasional oddities."""
    pieces = draw(st.lists(json_texts, max_size=8))
    style = draw(st.sampled_from(["compact", "spaced", "ascii", "extra-key", "trailing-space"]))
    datas = []
    text = ""
    for piece in pieces:
        text += piece
        if style == "compact":
            datas.append(json.dumps({"content": text}, separators=(",", ":"), ensure_ascii=False))
        elif style == "spaced":
            datas.append(json.dumps({"content": text}, ensure_ascii=False))
        elif style == "ascii":
            datas.append(json.dumps({"content": text}))
        elif style == "extra-key":
            datas.append(json.dumps({"content": text, "n": len(text)}))
        else:
            datas.append(json.dumps({"content": text}) + " ")
        if draw(st.booleans()) and draw(st.booleans()):
            datas.append(draw(st.text(max_size=30)))  # junk, or a rewrite
    return datas


@settings(max_examples=300, deadline=None)
@given(cumulative_datas())
def test_decoder_equals_full_decode(datas: list[str]) -> None:
    assert decoder_changes(datas) == reference_changes(datas)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(max_size=20), max_size=6), st.data())
def test_decoder_equals_full_decode_on_adversarial_suffixes(
    bodies: list[str], data: st.DataObject
) -> None:
    # Raw bodies glued after a valid prefix: stray quotes, escapes, surrogates.
    glue = st.sampled_from(['"', "\\", '\\"', '","x":"', "\\ud83d", "\\ude00", "\\u00e9", "}"])
    datas = ['{"content": "']
    for body in bodies:
        datas.append(datas[-1] + body + data.draw(glue))
    candidates = [d + '"}' for d in datas]
    assert decoder_changes(candidates) == reference_changes(candidates)


def test_surrogate_pair_split_across_events_matches_reference() -> None:
    datas = ['{"content": "a\\ud83d"}', '{"content": "a\\ud83d\\ude00"}']
    assert decoder_changes(datas) == reference_changes(datas)


@pytest.mark.parametrize("typed_every", [0, 3])
def test_decoder_with_the_parsers_proofs_equals_full_decode(typed_every: int) -> None:
    # Long non-ASCII values (the parser proves reuse for those), more in one
    # read than it keeps proofs for, and some typed events the decoder never
    # sees: with or without a proof kept for a value, the changes are the
    # reference's.
    text = "é" * 3000
    blocks: list[bytes] = []
    for i in range(3 * MAX_LINKS):
        text += f"ü{i}"
        kind = b"event: other\n" if typed_every and i % typed_every == 1 else b""
        blocks.append(kind + b"data: " + json.dumps({"content": text}, ensure_ascii=False).encode())
    parser = g.SSEParser(growing_tail=g.ContentDecoder.growing_tail)
    decoder = g.ContentDecoder()
    grower = parser._grower
    assert grower is not None
    decoder.follow(grower)
    datas: list[str] = []
    out: list[object] = []
    for event in parser.feed(b"\n\n".join(blocks) + b"\n\n"):
        if event.event != "message":
            continue
        datas.append(event.data)
        change = decoder.decode(event.data)
        if change is not None:
            out.append(change)
    assert len(datas) > MAX_LINKS
    assert out == reference_changes(datas)
