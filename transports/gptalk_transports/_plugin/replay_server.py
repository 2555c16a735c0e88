"""The pytest plugin's ``gptalk_replay_server`` fixture: a cassette for any
client, through the replay server or, in the recording modes, through the
recording proxy."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from gptalk_proto.cassette import Cassette, CassetteUnplayed, profile_named

from .._episodes import EpisodeReplayer
from .._server.proxy_run import record_through_proxy_in_thread
from .._server.replay import replay_server, serve_cassettes_in_thread
from .outcome import OUTCOME
from .save import save_recording

__all__ = ["gptalk_replay_server"]


def _passed(request: pytest.FixtureRequest, key: Any) -> bool:
    report = request.node.stash.get(key, None)
    return report is not None and bool(report.passed)


@pytest.fixture
def gptalk_replay_server(request: pytest.FixtureRequest, gptalk_cassette: Any) -> Iterator[str]:
    """The URL of a server for the test's cassette, for any HTTP client (the
    test's own IO stack, the g4f class, ``http.client``, a subprocess).

    Replaying (record mode ``none``, or ``once`` with the cassette there), a
    replay server plays the cassette at once (``--speed 0``) in episodes, as
    the client fixtures do (``_episodes.py``): the test's clients replay any
    of its chats, in any order, whatever other tests share the cassette;
    after a test that passed, the steps no client played in the episodes
    they began fail it (unless ``allow_unplayed``).  In the recording modes,
    a recording proxy to the live service (or the built-in reference server)
    records what the clients do; ``all`` and ``new_episodes`` add it after
    the recorded steps, ``rewrite`` and ``once`` write it anew (the later
    tests of a run that wrote it add to it, see ``save.py``); a test that
    failed writes nothing.
    """
    session = gptalk_cassette
    if session.replaying:
        settings = session.settings
        under = None if settings.profile is None else profile_named(settings.profile)

        def episodes(cassette: Cassette) -> EpisodeReplayer:
            # One for the test's clients together: its unplayed steps are
            # the test's (the episodes they began), as the client fixtures'.
            return EpisodeReplayer(cassette, settings.matching, under)

        server = replay_server(
            [session.existing], speed=0, secrets=settings.secrets, replayer=episodes
        )
        with serve_cassettes_in_thread(
            [session.existing], check_played=False, server=server
        ) as url:
            yield url
        if _passed(request, OUTCOME) and not session.settings.allow_unplayed:
            missing = server.unplayed()
            if missing:
                raise CassetteUnplayed([(step - 1, kind) for _, step, kind in missing])
        return
    profile = session.settings.profile or "gptalk"
    # Unredacted here, redacted as it is saved: the upstream is asked for
    # uncompressed bodies all the same (see record_through_proxy).
    with record_through_proxy_in_thread(
        session._live_url(), redact=False, profile=profile, identity=True
    ) as run:
        yield run.url
    if not _passed(request, OUTCOME):
        # As the client fixtures: a failed test's recording (the service
        # down, an error) never replaces or extends the cassette.
        return
    recorded = run.cassette
    assert recorded is not None
    save_recording(session.path, recorded, session.mode, session.settings.secrets, session.written)
