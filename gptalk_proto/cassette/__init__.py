"""Record and replay, sans IO.

* The format: :class:`Cassette` of :class:`Interaction` s, each a
  :class:`RecordedRequest` and a :class:`RecordedResponse` of
  :class:`RecordedChunk` s; loading checks raise :class:`CassetteError`.
* :class:`Recorder`: bytes seen on a connection in, a cassette out.
* :class:`Replayer` / :class:`ReplayConnection`: a cassette in, the recorded
  bytes back to a client; :class:`CassetteMismatch` when the client asks
  something else, :class:`CassetteUnplayed` when it asks less.
* :class:`ReplayState`, :class:`ReplayTiming`, :func:`rechunker`: when and
  in what pieces a replayed connection delivers the recorded bytes (the
  drivers own the clock).
* :class:`ReplayServer` / :class:`ReplayServerConnection`: the server side
  of replay for many clients at once (sessions keyed by the tokens it hands
  out); :class:`ProxyRecorder` / :class:`ProxyConnection`: a recording
  proxy's tee, request by request.
* :class:`Profile` (:data:`GPTALK`, the default, and :data:`GENERIC` for
  any SSE or JSON API; :data:`PROFILES`, :func:`profile_named`): what the
  tools know about the API a cassette records.
* :func:`redact`, :func:`check_secrets`: secrets out of a cassette
  (:data:`PLACEHOLDER`: what stands for one);
  :func:`lint` finds what looks like one; :func:`to_har` exports to HAR;
  :func:`verify_rechunked` reads every response back cut at every split
  point.

The schema of the format ships next to this module (``cassette.schema.json``).
"""

from .._public import show_as_public
from .._wire import text_request_fields
from ._format import (
    FORMAT_VERSION,
    MAX_DEPTH,
    MAX_TIME,
    Cassette,
    CassetteError,
    Interaction,
    RecordedChunk,
    RecordedRequest,
    RecordedResponse,
)
from ._har import to_har
from ._lint import lint
from ._playback import MAX_RANDOM_PIECE, ReplayState, ReplayTiming, rechunker
from ._profiles import GENERIC, GPTALK, PROFILES, Profile, profile_named
from ._proxy_recorder import (
    MAX_NOTED_REFUSALS,
    MAX_PROXIED_REQUEST,
    ProxyConnection,
    ProxyRecorder,
    ToClient,
    ToUpstream,
)
from ._rechunk import RechunkReport, verify_rechunked
from ._recorder import ChunkStore, Recorder
from ._redact import MIN_SECRET_LENGTH, PLACEHOLDER, check_secrets, redact
from ._replay import (
    EOF,
    CassetteMismatch,
    CassetteUnplayed,
    EndOfRecording,
    ReplayConnection,
    Replayer,
)
from ._replay_server import (
    MAX_PIPELINED_ANSWERS,
    MAX_REPLAY_SESSIONS,
    MISMATCH_STATUS,
    ReplayClose,
    ReplayDelivered,
    ReplayMismatch,
    ReplayServer,
    ReplayServerConnection,
    ReplayWrite,
)

__all__ = [
    "EOF",
    "FORMAT_VERSION",
    "GENERIC",
    "GPTALK",
    "MAX_DEPTH",
    "MAX_NOTED_REFUSALS",
    "MAX_PIPELINED_ANSWERS",
    "MAX_PROXIED_REQUEST",
    "MAX_RANDOM_PIECE",
    "MAX_REPLAY_SESSIONS",
    "MAX_TIME",
    "MIN_SECRET_LENGTH",
    "MISMATCH_STATUS",
    "PLACEHOLDER",
    "PROFILES",
    "Cassette",
    "CassetteError",
    "CassetteMismatch",
    "CassetteUnplayed",
    "ChunkStore",
    "EndOfRecording",
    "Interaction",
    "Profile",
    "ProxyConnection",
    "ProxyRecorder",
    "RechunkReport",
    "RecordedChunk",
    "RecordedRequest",
    "RecordedResponse",
    "Recorder",
    "ReplayClose",
    "ReplayConnection",
    "ReplayDelivered",
    "ReplayMismatch",
    "ReplayServer",
    "ReplayServerConnection",
    "ReplayState",
    "ReplayTiming",
    "ReplayWrite",
    "Replayer",
    "ToClient",
    "ToUpstream",
    "check_secrets",
    "lint",
    "profile_named",
    "rechunker",
    "redact",
    "text_request_fields",
    "to_har",
    "verify_rechunked",
]

# Shown as gptalk_proto.cassette.X, not gptalk_proto.cassette._module.X.
# gptalk_proto's own names are gptalk_proto.X by now (the package runs
# first): what is still in a private core module is this room's.
show_as_public(globals(), __name__, __name__ + "._", "gptalk_proto._")
