"""Hypothesis strategies for fuzzing SSE and GPTalk consumers.

Import them into property tests of your own (hypothesis must be installed:
``pip install 'gptalk-proto[hypothesis]'``)::

    from hypothesis import given, strategies as st
    from gptalk_proto.testing.strategies import chunkings, sse_streams

    @given(stream=sse_streams(), data=st.data())
    def test_my_consumer(stream, data):
        chunks = data.draw(chunkings(stream.data))
        assert my_consumer(chunks) == list(stream.events)

Server-sent events:

* :func:`sse_events`, :func:`sse_event_lists`: events as a parser returns them.
* :func:`sse_encodings`: every way to write a list of events (line ends,
  comments, field order, ignored lines, BOM), as an :class:`EncodedStream`
  that carries the answer; :func:`sse_streams` draws both.
* :func:`sse_like_bytes`: hostile near-SSE bytes, with no known answer.
* :func:`chunkings`: arbitrary ways to cut bytes into reads.

GPTalk:

* :func:`gptalk_replies`, :func:`gptalk_stream_bodies`: replies and the event
  streams that carry them.
* :func:`gptalk_exchanges`: the raw HTTP responses for one chat, valid or with
  one fault, with the outcome a client must reach (:class:`ScriptedExchange`).
* :func:`gptalk_raw_exchanges`: arbitrary and mutated server bytes.
* :func:`http_response`: frame a response yourself.
* :func:`gptalk_requests`: what a client connection sends a server: valid,
  hostile, mutated or arbitrary request bytes (feed them to a server machine
  with :func:`~gptalk_proto.testing.play_requests`); :data:`ZERO_TOKEN`.
"""

try:
    import hypothesis  # noqa: F401  (only to say what is missing, in one line)
except ImportError:
    raise ImportError(
        "gptalk_proto.testing.strategies needs hypothesis: pip install 'gptalk-proto[hypothesis]'"
    ) from None

from .._public import show_as_public
from ._gptalk_strategies import (
    ScriptedExchange,
    gptalk_exchanges,
    gptalk_raw_exchanges,
    gptalk_replies,
    gptalk_stream_bodies,
)
from ._request_strategies import ZERO_TOKEN, gptalk_requests
from ._scripted import http_response
from ._sse_strategies import (
    EncodedStream,
    chunkings,
    sse_encodings,
    sse_event_lists,
    sse_events,
    sse_like_bytes,
    sse_streams,
)

__all__ = [
    "ZERO_TOKEN",
    "EncodedStream",
    "ScriptedExchange",
    "chunkings",
    "gptalk_exchanges",
    "gptalk_raw_exchanges",
    "gptalk_replies",
    "gptalk_requests",
    "gptalk_stream_bodies",
    "http_response",
    "sse_encodings",
    "sse_event_lists",
    "sse_events",
    "sse_like_bytes",
    "sse_streams",
]

# Shown as gptalk_proto.testing.strategies.X (help(), the documentation).
show_as_public(globals(), __name__, "gptalk_proto.testing._")
