"""``gptalk replay``: play a cassette back, printing the replies."""

from __future__ import annotations

import argparse
import math
from typing import Any, TextIO

import anyio

from gptalk_proto import (
    ChatEvent,
)

from .._cassettes import ReplayTiming, load_cassette
from .._session import replay_session
from .common import _port, _positive, _Printer, refuse_unused
from .exits import UsageError, _add_command, end_line
from .profile import add_profile_argument, add_volatile_argument, chosen_profile
from .replay_serve import SERVE_ONLY, add_serve_arguments, replay_serve

__all__ = ["add_command"]


#: The slowest replay --speed: a thousand times slower than recorded.  Slower
#: would turn the longest recorded gap into waits of years (or infinity).
MIN_SPEED = 0.001


def _speed(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {value!r}") from None
    if not math.isfinite(number) or number < 0 or 0 < number < MIN_SPEED:
        raise argparse.ArgumentTypeError(f"expected 0 (at once) or a speed from {MIN_SPEED:g} up")
    return number


def _replay(args: argparse.Namespace, stdin: TextIO, out: TextIO, err: TextIO) -> int:
    if args.serve:
        return replay_serve(args, out, err)
    if len(args.file) > 1:
        raise UsageError("several cassettes are replayed with --serve only")
    refuse_unused(args, SERVE_ONLY, "is for --serve only")
    args.file = args.file[0]
    try:
        timing = ReplayTiming(speed=args.speed or None, max_gap=args.max_gap)
    except ValueError as exc:
        raise UsageError(f"--max-gap: {exc}") from None
    cassette = load_cassette(args.file)
    profile = chosen_profile(args, cassette)
    if profile.name != "gptalk":
        raise UsageError(
            f"a cassette of profile {profile.name} is played to its own clients: "
            "use --serve and point them at the URL"
        )
    printer = _Printer(out, err, args.json)

    def show(event: ChatEvent) -> None:
        printer(event)

    results = anyio.run(lambda: replay_session(cassette, timing=timing, on_event=show))
    end_line(out)
    for result in results:
        if result.error is not None:
            err.write(f"gptalk: the recorded chat ended with: {result.error}\n")
    return 0


def add_command(commands: argparse._SubParsersAction[Any]) -> None:
    """Add the command and its arguments to ``commands``."""
    replay = _add_command(
        commands,
        "replay",
        "replay a cassette offline",
        "Replay the chats of a cassette offline, printing the text as it streams.",
    )
    replay.add_argument("file", metavar="FILE", nargs="+", help="the cassette (several: --serve)")
    replay.add_argument(
        "--speed",
        type=_speed,
        default=1.0,
        metavar="X",
        help=f"1 as recorded (default), 2 twice as fast, 0 at once; at least {MIN_SPEED:g}",
    )
    replay.add_argument("--max-gap", type=_positive, metavar="S", help="cap any wait at S seconds")
    replay.add_argument("--json", action="store_true", help="print events as JSON lines")
    add_serve_arguments(replay, _port)
    add_profile_argument(replay, recording=False)
    add_volatile_argument(replay)
    replay.set_defaults(handler=_replay)
