"""``gptalk load``: a bounded load run against a loopback server."""

from __future__ import annotations

import argparse
import json
import signal
from collections.abc import AsyncIterator
from contextlib import ExitStack
from typing import Any, TextIO

import anyio

from .._load import DEFAULT_DURATION, LoadReport, run_load
from .common import (
    _count,
    _positive,
    _timeout,
    _timeout_seconds,
    _url,
)
from .exits import (
    EXIT_CODES,
    _add_command,
)

__all__ = ["add_command", "run"]


async def _load(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    stop = anyio.Event()

    async def on_interrupt(signals: AsyncIterator[int]) -> None:
        async for _ in signals:
            stop.set()  # the run ends at once, and reports what it did
            return

    with ExitStack() as stack:
        # Ctrl-C is caught from before the run starts: it ends the run with
        # its figures so far.  (No signal handler outside the main thread.)
        try:
            signals = stack.enter_context(anyio.open_signal_receiver(signal.SIGINT))
        except (RuntimeError, ValueError, NotImplementedError):
            signals = None
        duration = args.duration
        if duration is None and args.chats is None:
            duration = DEFAULT_DURATION  # --chats alone bounds the run by count, not by the clock
        if args.url is None:
            err.write("gptalk: no --url given; loading the built-in reference server in-process\n")
            err.flush()
        # An error of the run is raised after the task group has exited, so
        # it reaches main() as itself, not wrapped in an ExceptionGroup.
        failure: Exception | None = None
        report: LoadReport | None = None
        async with anyio.create_task_group() as group:
            if signals is not None:
                group.start_soon(on_interrupt, signals)
            try:
                report = await run_load(
                    args.url,
                    concurrency=args.concurrency,
                    duration=duration,
                    chats=args.chats,
                    timeout=_timeout(args),
                    stop=stop,
                )
            except Exception as exc:
                failure = exc
            group.cancel_scope.cancel()
    if failure is not None:
        raise failure
    assert report is not None
    out.write((json.dumps(report.as_dict()) if args.json else report.format()) + "\n")
    out.flush()
    if report.interrupted:
        err.write("gptalk: interrupted\n")
        return EXIT_CODES["interrupted"]
    return EXIT_CODES["check"] if report.failed else EXIT_CODES["ok"]


def run(args: argparse.Namespace, stdin: TextIO, out: TextIO, err: TextIO) -> int:
    """Run the command (the handler ``main`` calls)."""
    return anyio.run(_load, args, out, err)


def add_command(commands: argparse._SubParsersAction[Any]) -> None:
    """Add the command and its arguments to ``commands``."""
    load = _add_command(
        commands,
        "load",
        "a bounded load run against a loopback server",
        "Run concurrent chats against a server on a loopback address until "
        "--duration seconds pass or --chats chats have started (--chats alone: "
        "exactly N chats, however long they take), then report chats, "
        "requests and streamed events per second. With no --url, the built-in "
        "reference server runs in-process. Exits 1 if any chat failed.",
    )
    load.add_argument(
        "--url", type=_url, help="a loopback service URL (default: the built-in server)"
    )
    load.add_argument(
        "--concurrency",
        type=_count,
        default=20,
        metavar="N",
        help="chats running at once (default: %(default)s)",
    )
    load.add_argument(
        "--duration",
        type=_positive,
        metavar="S",
        help=f"seconds during which new chats start (default: {DEFAULT_DURATION:g}, "
        "or none with --chats)",
    )
    load.add_argument("--chats", type=_count, metavar="N", help="stop after N chats")
    load.add_argument("--json", action="store_true", help="print the report as JSON")
    load.add_argument(
        "--connect-timeout",
        type=_timeout_seconds,
        default=5.0,
        metavar="S",
        help="seconds to open a connection (default: %(default)s)",
    )
    load.add_argument(
        "--read-timeout",
        type=_timeout_seconds,
        default=10.0,
        metavar="S",
        help="seconds without a byte before a chat fails (default: %(default)s)",
    )
    load.add_argument(
        "--total-timeout",
        type=_timeout_seconds,
        default=30.0,
        metavar="S",
        help="seconds for a whole chat, retries included (default: %(default)s)",
    )
    load.set_defaults(handler=run)
