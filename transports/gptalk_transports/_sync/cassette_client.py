# GENERATED from _async/cassette_client.py by `python -m tests.unasync`; do not edit.
"""A client wired to one cassette: replay it, record into it, or both.

The pytest plugin's fixtures use it: with ``replaying`` the client plays the
cassette's episodes offline; otherwise it records through a live connector,
and with ``new_episodes`` it replays the episodes that match first.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gptalk_proto.cassette import Cassette

from .._backends.base import SyncBackend
from .._cassettes import Recording
from .._config import Origin, make_ssl_context
from .._episodes import EpisodeReplayer, Matching
from .client import Client
from .connector import SyncConnector
from .episodes import SyncEpisodeConnector, SyncEpisodeReplayConnector
from .recording import SyncRecordingConnector

__all__ = ["cassette_client"]


def cassette_client(
    existing: Cassette | None,
    *,
    replaying: bool,
    new_episodes: bool,
    matching: Matching,
    new_recording: Callable[[], Recording],
    backend: str | SyncBackend,
    **kwargs: Any,
) -> tuple[Client, EpisodeReplayer | None]:
    """The client, and the replayer whose unplayed episodes the test must check
    (None when nothing replays).  ``kwargs`` go to the client."""
    if replaying:
        assert existing is not None
        replay = SyncEpisodeReplayConnector(existing, matching)
        return Client(existing.origin, connector=replay, **kwargs), replay.replayer
    recording = new_recording()
    origin = Origin.parse(recording.recorder.origin)
    ssl_context = make_ssl_context(True) if origin.tls else None
    inner = SyncConnector(backend, origin, ssl_context=ssl_context)
    if new_episodes and existing is not None:
        episodes = SyncEpisodeConnector(existing, inner, recording, matching)
        return Client(str(origin), connector=episodes, **kwargs), episodes.replayer
    connector = SyncRecordingConnector(inner, recording)
    return Client(str(origin), connector=connector, **kwargs), None
