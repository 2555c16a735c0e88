"""Test helpers shipped with gptalk_proto.

* :class:`MemoryPair` / :func:`run_chat`: a client machine against a server
  machine in memory, with a fake clock (the pair helper of h11's tests).
* :func:`random_splitter`: cut a byte stream at seeded random points.
* ``gptalk_proto.testing.strategies``: hypothesis strategies for fuzzing SSE
  and GPTalk consumers (needs hypothesis installed).
* ``gptalk_proto.testing._reference_sse``: a straightforward reference SSE
  parser, for differential tests.
"""

from ._pair import MemoryPair, random_splitter, run_chat

__all__ = ["MemoryPair", "random_splitter", "run_chat"]
