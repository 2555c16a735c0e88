"""``gptalk record --listen``: the recording proxy on the command line."""

from __future__ import annotations

import argparse
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import anyio

from gptalk_proto.cassette import CassetteError, check_secrets, profile_named

from .._cassettes import save_cassette
from .._server.proxy_run import record_through_proxy
from .common import _listen_host, cannot_listen, refuse_unused, server_log
from .exits import UsageError

__all__ = ["CHAT_ONLY", "LISTEN_ONLY", "add_listen_arguments", "record_listen"]

#: The flags only --listen reads, and those only a recorded chat reads (not
#: --listen), with their defaults: given in the other mode, a usage error
#: (see refuse_unused).
LISTEN_ONLY: dict[str, object] = {"--host": "127.0.0.1", "--port": 0, "--chats": None}
CHAT_ONLY: dict[str, object] = {
    "--model": "gpt-3.5-turbo",
    "--max-events": None,
    "--idle-timeout": None,
}


def add_listen_arguments(record: Any, port_type: Any, count_type: Any) -> None:
    """The flags of ``record --listen`` on the ``record`` command's parser."""
    record.add_argument(
        "--listen",
        action="store_true",
        help="instead of chatting, run a recording proxy to --url that any HTTP client "
        "can use (as its service URL, or as HTTP_PROXY); prints 'listening on "
        "http://HOST:PORT'; on SIGINT, SIGTERM or after --chats N writes the cassette "
        "and exits 0 (6, writing nothing, if no request went through it)",
    )
    record.add_argument(
        "--host",
        type=_listen_host,
        default=LISTEN_ONLY["--host"],
        help="with --listen: the address (default: %(default)s)",
    )
    record.add_argument(
        "--port",
        type=port_type,
        default=LISTEN_ONLY["--port"],
        help="with --listen: the port (default: 0, any free)",
    )
    record.add_argument(
        "--chats", type=count_type, metavar="N", help="with --listen: stop after N chats"
    )


async def _listen(
    args: argparse.Namespace,
    out: TextIO,
    err: TextIO,
    write: Callable[[Any], None],
) -> int:
    failure: UsageError | None = None
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        try:
            manager = record_through_proxy(
                args.url,
                host=args.host,
                port=args.port,
                proxy=args.proxy,
                trust_env=not args.no_env_proxy,
                chats=args.chats,
                redact=not args.no_redact,
                secrets=tuple(args.secret),
                profile=args.profile,
            )
            async with manager as run, anyio.create_task_group() as group:
                out.write(f"listening on {run.url}\n")
                out.flush()

                async def on_signal() -> None:
                    async for _ in signals:
                        break
                    run.done.set()

                group.start_soon(on_signal)
                await run.done.wait()
                group.cancel_scope.cancel()
        except OSError as exc:
            failure = cannot_listen(args, exc)
    if failure is not None:
        raise failure
    cassette = run.cassette
    assert cassette is not None
    if not cassette.interactions:
        raise CassetteError("nothing was recorded: no request went through the proxy")
    write(cassette)
    profile = profile_named(cassette.profile)
    chats = sum(
        profile.counts_as_chat(i.request.target.split("?")[0]) for i in cassette.interactions
    )
    err.write(
        f"gptalk: recorded {chats} chats, {len(cassette.interactions)} exchanges to {args.output}\n"
    )
    return 0


def record_listen(
    args: argparse.Namespace, out: TextIO, err: TextIO, output: Path, write: Callable[..., None]
) -> int:
    """Run the recording proxy; write the cassette to ``output`` at the end."""
    if args.url is None:
        raise UsageError("--listen records against a service: give its --url")
    if args.prompt:
        raise UsageError("--listen takes no PROMPT: the proxy's clients chat")
    if args.fault:
        raise UsageError("--fault is for the built-in server; drop it or --listen")
    refuse_unused(args, CHAT_ONLY, "is for recording a chat (a PROMPT): --listen has no use for it")
    check_secrets(args.secret)  # before anything is recorded: a usage error
    # The proxy's log lines go to stderr as gptalk's.
    with server_log(err):
        return anyio.run(
            _listen,
            args,
            out,
            err,
            lambda cassette: write(output, lambda p: save_cassette(p, cassette)),
        )
