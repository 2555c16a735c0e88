"""``gptalk replay --serve``: the replay server on the command line."""

from __future__ import annotations

import argparse
from typing import Any, TextIO

import anyio

from gptalk_proto.cassette import Cassette, profile_named

from .._episodes import EpisodeReplayer
from .._server.replay import finish_answers, replay_server, report_unplayed, serve_replay
from .common import _listen_host, serve_until_stopped

__all__ = ["MAX_SHOWN_MISMATCHES", "SERVE_ONLY", "add_serve_arguments", "replay_serve"]

#: Mismatches written to stderr (each a few lines); the one after them says
#: later ones are not shown, and those are not (each client still gets its
#: 409 naming the differences).  A client that loops on a wrong request, a
#: new connection each time, must not fill its runner's terminal or log:
#: the first ones show what went wrong (as the recording proxy's
#: MAX_NOTED_REFUSALS).
MAX_SHOWN_MISMATCHES = 20

#: The flags only --serve reads, with their defaults (given without --serve: a
#: usage error, see refuse_unused).
SERVE_ONLY: dict[str, object] = {
    "--host": "127.0.0.1",
    "--port": 0,
    "--allow-unplayed": False,
    "--once": False,
    "--episodes": False,
}


def add_serve_arguments(replay: Any, port_type: Any) -> None:
    """The flags of ``replay --serve`` on the ``replay`` command's parser."""
    replay.add_argument(
        "--serve",
        action="store_true",
        help="serve the cassettes' chats to any HTTP client instead; prints "
        "'listening on http://HOST:PORT'; on SIGINT or SIGTERM exits 0 if every step "
        "was played, else 1 listing the unplayed steps",
    )
    replay.add_argument(
        "--host",
        type=_listen_host,
        default=SERVE_ONLY["--host"],
        help="with --serve: the address (default: %(default)s)",
    )
    replay.add_argument(
        "--port",
        type=port_type,
        default=SERVE_ONLY["--port"],
        help="with --serve: the port (default: 0, any free)",
    )
    replay.add_argument(
        "--allow-unplayed", action="store_true", help="with --serve: exit 0 even if steps remain"
    )
    replay.add_argument(
        "--once", action="store_true", help="with --serve: exit once every step was played"
    )
    replay.add_argument(
        "--episodes",
        action="store_true",
        help="with --serve: play each cassette by episodes (a login; a chat with its "
        "retries and stream) shared by all clients, in any order: a login plays the first "
        "login not yet played, a chat the first not yet begun that matches (a cassette "
        "several clients or tests recorded); only the episodes begun must be played",
    )


async def _serve(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    def episodes(cassette: Cassette) -> EpisodeReplayer:
        # One per cassette, shared by the clients (see ReplayServer),
        # matching as replay_server's profile and volatile fields say.
        profile = profile_named(args.profile or cassette.profile)
        if args.volatile:
            profile = profile.with_volatile(args.volatile)
        return EpisodeReplayer(cassette, profile=profile)

    server = replay_server(
        args.file,
        speed=args.speed,
        max_gap=args.max_gap,
        profile=args.profile,
        volatile=args.volatile,
        replayer=episodes if args.episodes else None,
    )
    done = anyio.Event()

    shown = 0

    def mismatch(text: str) -> None:
        nonlocal shown
        shown += 1
        if shown <= MAX_SHOWN_MISMATCHES:
            err.write(f"gptalk: {text}\n")
        elif shown == MAX_SHOWN_MISMATCHES + 1:
            err.write("gptalk: further mismatches are not shown (each client gets its 409)\n")
        else:
            return
        err.flush()

    def answered() -> None:
        if args.once and server.all_played:
            done.set()

    # Cassettes of no steps: everything was played before any client came.
    answered()

    await serve_until_stopped(
        lambda task_status: serve_replay(
            server,
            host=args.host,
            port=args.port,
            on_mismatch=mismatch,
            on_response=answered,
            task_status=task_status,
        ),
        args,
        out,
        err,
        done,
        before_stop=lambda: finish_answers(server),
    )
    err.write("gptalk: replay server stopped\n")
    if report_unplayed(server, err) and not args.allow_unplayed:
        return 1
    return 0


def replay_serve(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Run the replay server until a signal (or, with --once, every step played)."""
    return anyio.run(_serve, args, out, err)
