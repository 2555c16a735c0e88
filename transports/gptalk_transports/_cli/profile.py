"""``--profile NAME``: the API a cassette records, on every command that
records, replays or checks one."""

from __future__ import annotations

import argparse
from typing import Any

from gptalk_proto.cassette import PROFILES, Cassette, Profile, profile_named

from .exits import UsageError

__all__ = ["add_profile_argument", "add_volatile_argument", "chosen_profile"]

#: Cap on --volatile: each name is looked for in every replayed request's
#: JSON; a longer list is a mistake (the core refuses past its own cap too).
MAX_VOLATILE_ARGUMENTS = 64


def add_profile_argument(parser: Any, *, recording: bool) -> None:
    """Add ``--profile``: recording defaults to gptalk; reading a cassette,
    to the profile the cassette names."""
    default = "gptalk" if recording else None
    parser.add_argument(
        "--profile",
        choices=sorted(PROFILES),
        default=default,
        metavar="NAME",
        help="the API's profile: gptalk, or generic for any SSE or JSON API "
        "(OpenAI, Anthropic...): what is redacted, how requests match "
        + ("(default: gptalk)" if recording else "(default: the cassette's own)"),
    )


def add_volatile_argument(parser: Any) -> None:
    """Add ``--volatile FIELD`` (repeatable)."""
    parser.add_argument(
        "--volatile",
        action="append",
        default=[],
        metavar="FIELD",
        help="a JSON body field whose value changes from run to run: not matched (repeat)",
    )


def chosen_profile(args: argparse.Namespace, cassette: Cassette) -> Profile:
    """The ``--profile`` given, else the cassette's; with ``--volatile``."""
    name = args.profile if args.profile is not None else cassette.profile
    volatile = getattr(args, "volatile", [])
    if len(volatile) > MAX_VOLATILE_ARGUMENTS:
        raise UsageError(f"at most {MAX_VOLATILE_ARGUMENTS} --volatile fields")
    return profile_named(name).with_volatile(volatile)
