"""ASCII values (JSON with ``\\uXXXX`` escapes, as ``json.dumps`` writes by
default) are handed over as Extensions too: their bytes compared with the
previous value's, only the new part decoded.

Differential tests: the chat's deltas equal the plain decode whatever the
line ends, the reads (whole, byte by byte, random cuts, a CRLF split across
two reads) and the HTTP chunks (boundaries inside a line).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st

import gptalk_proto as g
from gptalk_proto import SSEParser
from gptalk_proto.sse._growing import Extension, whole_data

from .test_chat_extensions import _HEAD, _run_chat

#: Non-ASCII text, quotes, backslashes and line feeds: all escaped in ASCII JSON.
_REPLY = ('caf\u00e9 \u2713 "q" \\ \n\U0001f600 ' * 300)[:3000]


def _events(texts: list[str], crlf: bool) -> list[bytes]:
    end = b"\r\n\r\n" if crlf else b"\n\n"
    events = [b"data: %s%s" % (json.dumps({"content": t}).encode(), end) for t in texts]
    return [*events, b"data: [DONE]" + end]


def _framed(events: list[bytes], pieces: int) -> bytes:
    # Each event in ``pieces`` HTTP chunks: chunk boundaries inside its line.
    out = []
    for event in events:
        step = -(-len(event) // pieces)
        for at in range(0, len(event), step):
            part = event[at : at + step]
            out.append(b"%x\r\n%s\r\n" % (len(part), part))
    return _HEAD + b"".join(out) + b"0\r\n\r\n"


def _texts(sizes: list[int]) -> list[str]:
    texts, end = [], 2500
    for size in sizes:
        end = min(end + size, len(_REPLY))
        texts.append(_REPLY[:end])
    return texts


def _check(seen: list[object], texts: list[str]) -> None:
    deltas = [e.text for e in seen if type(e) is g.TextDelta]
    assert deltas[0] == texts[0]
    assert deltas[1:] == [b[len(a) :] for a, b in itertools.pairwise(texts) if b != a]
    assert seen[-1] == g.ChatDone(texts[-1])


def test_ascii_values_are_handed_over_as_extensions() -> None:
    # The new path runs (or the tests below prove nothing about it): fed
    # whole, every ASCII value after the first long one is an Extension.
    texts = _texts([3] * 30)
    stream = b"".join(_events(texts, crlf=False)[:-1])
    parser = SSEParser(growing_tail=2)
    assert parser._grower is not None
    parser._grower.hand_extensions()
    events = parser.feed(stream)
    assert [whole_data(e).data for e in events] == [json.dumps({"content": t}) for t in texts]
    assert all(whole_data(e).data.isascii() for e in events)
    assert type(events[0].data) is str
    kinds: set[type] = {type(e.data) for e in events[1:]}
    assert kinds == {Extension}
    # A parser not told to hand them over still gives text.
    plain = SSEParser(growing_tail=2).feed(stream)
    assert plain == [whole_data(e) for e in events]
    assert all(type(e.data) is str for e in plain)


def test_ascii_deltas_whole_and_byte_by_byte(make_chat: Callable[..., g.Chat]) -> None:
    texts = _texts([1, 4, 9, 0, 32] * 4)
    for crlf, pieces in ((False, 1), (True, 1), (False, 3), (True, 4)):
        stream = _framed(_events(texts, crlf), pieces)
        for reads in ([stream], [stream[i : i + 1] for i in range(len(stream))]):
            _check(_run_chat(make_chat(credentials=g.Credentials()), stream, reads), texts)


def test_a_crlf_split_across_reads(make_chat: Callable[..., g.Chat]) -> None:
    # Each cut falls between the CR and the LF of a line end, in turn.
    texts = _texts([5] * 12)
    stream = _framed(_events(texts, crlf=True), 2)
    body = stream.index(b"data: ")
    for cr in itertools.islice(
        (at for at in range(body, len(stream)) if stream[at : at + 2] == b"\r\n"), 0, None, 7
    ):
        reads = [stream[: cr + 1], stream[cr + 1 :]]
        _check(_run_chat(make_chat(credentials=g.Credentials()), stream, reads), texts)


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.integers(0, 40), min_size=1, max_size=12),
    cuts=st.lists(st.integers(0, 10**6), max_size=10),
    crlf=st.booleans(),
    pieces=st.integers(1, 5),
)
def test_ascii_deltas_at_any_reads_and_chunks(
    sizes: list[int], cuts: list[int], crlf: bool, pieces: int
) -> None:
    texts = _texts(sizes)
    stream = _framed(_events(texts, crlf), pieces)
    bounds = [0, *sorted(c % (len(stream) + 1) for c in cuts), len(stream)]
    reads = [stream[a:b] for a, b in itertools.pairwise(bounds) if b > a]
    chat = g.Chat("hi", credentials=g.Credentials(), fingerprint="0" * 32)
    _check(_run_chat(chat, stream, reads), texts)
