"""Test helpers shipped with gptalk_proto.

* :class:`MemoryPair` / :func:`run_chat`: a client machine against a server
  machine in memory, with a fake clock (the pair helper of h11's tests).
* :func:`random_splitter`: cut a byte stream at seeded random points.
* :func:`play_responses`: a client machine against canned raw responses (a
  scripted server) framed with :func:`http_response`; :func:`check_reply`
  checks that a chat's events add up.
* :func:`play_requests`: a server machine against a client's raw bytes (the
  mirror of :func:`play_responses`).
* ``gptalk_proto.testing.strategies``: hypothesis strategies for fuzzing SSE
  and GPTalk consumers (needs hypothesis installed).
* ``python -m gptalk_proto.testing.fuzz``: coverage-guided fuzzing of the SSE
  parser, the client machine and the server machine with atheris (the ``fuzz`` extra).
* ``gptalk_proto.testing._reference_sse``: a straightforward reference SSE
  parser, for differential tests.
"""

from .._public import show_as_public
from ._pair import MemoryPair, random_splitter, run_chat
from ._scripted import Played, check_reply, http_response, play_responses
from ._served import Served, play_requests

__all__ = [
    "MemoryPair",
    "Played",
    "Served",
    "check_reply",
    "http_response",
    "play_requests",
    "play_responses",
    "random_splitter",
    "run_chat",
]

# Shown as gptalk_proto.testing.X, not gptalk_proto.testing._module.X (help(), the documentation).
show_as_public(globals(), __name__, __name__ + "._")
