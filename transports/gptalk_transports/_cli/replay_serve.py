"""``gptalk replay --serve``: the replay server on the command line."""

from __future__ import annotations

import argparse
from typing import Any, TextIO

import anyio

from .._server.replay import replay_server, report_unplayed, serve_replay
from .common import _listen_host, serve_until_stopped

__all__ = ["SERVE_ONLY", "add_serve_arguments", "replay_serve"]

#: The flags only --serve reads, with their defaults (given without --serve: a
#: usage error, see refuse_unused).
SERVE_ONLY: dict[str, object] = {
    "--host": "127.0.0.1",
    "--port": 0,
    "--allow-unplayed": False,
    "--once": False,
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


async def _serve(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    server = replay_server(
        args.file,
        speed=args.speed,
        max_gap=args.max_gap,
        profile=args.profile,
        volatile=args.volatile,
    )
    done = anyio.Event()

    def mismatch(text: str) -> None:
        err.write(f"gptalk: {text}\n")
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
    )
    err.write("gptalk: replay server stopped\n")
    if report_unplayed(server, err) and not args.allow_unplayed:
        return 1
    return 0


def replay_serve(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Run the replay server until a signal (or, with --once, every step played)."""
    return anyio.run(_serve, args, out, err)
