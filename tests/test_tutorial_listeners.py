"""The replay tutorial's terminal session, run as shown: ``gptalk serve``,
``gptalk record --listen`` in front of it, ``gptalk replay --serve --once``
on what it wrote, each in a process of its own, with a client that is not
ours (``http.client``) making the chats.

The page shows the three commands and what each prints; the other pages'
``text`` blocks are output samples (see test_readme), this one is a session
a reader types, so it is run: each ``$`` line with the URLs the earlier
commands really printed put in place of the page's, each printed line
matched against the page's (ports aside).
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from .console import LISTENING, listening
from .readme_sync import ROOT, blocks
from .test_record_proxy import by_hand

PAGE = ROOT / "docs" / "tutorials" / "replay-server-and-proxy.md"
# Seconds each command has to exit by itself once its chats are done.
EXIT_WAIT = 30


def _session() -> list[tuple[list[str], str]]:
    """The page's terminal session: (command's arguments, its printed line)."""
    found = [
        b
        for b in blocks(PAGE.read_text(encoding="utf-8"))
        if b.lang == "text" and b.code.startswith("$ gptalk serve\n")
    ]
    assert len(found) == 1, "the tutorial shows one terminal session"
    lines = found[0].code.splitlines()
    commands = lines[0::2]
    printed = lines[1::2]
    assert len(commands) == len(printed) == 3
    assert all(line.startswith("$ gptalk ") for line in commands)
    return [(shlex.split(c[2:])[1:], p) for c, p in zip(commands, printed, strict=True)]


def _shown_url(line: str) -> str:
    # What the page shows a command print is the line the command prints.
    match = LISTENING.fullmatch(line + "\n")
    assert match is not None, line
    return match["url"]


def test_the_terminal_session_runs_as_shown(tmp_path: Path) -> None:
    serve, record, replay = _session()
    shown = [_shown_url(line) for _, line in (serve, record, replay)]
    assert serve[0] == ["serve"], "the page's serve takes no arguments"
    with listening(*serve[0]) as (_, service):
        # The page's URL of the service, in the proxy's command, is this one.
        args = [a.replace(shown[0], service) for a in record[0]]
        assert args != record[0], "the proxy's --url is the service's printed URL"
        output = tmp_path / args[args.index("-o") + 1]
        args[args.index("-o") + 1] = str(output)
        chats = int(args[args.index("--chats") + 1])
        with listening(*args) as (proxy, url):
            live = [by_hand(url, f"Hello number {n}")[0] for n in range(chats)]
            # --chats N: the proxy writes the cassette and exits 0 by itself.
            assert proxy.wait(timeout=EXIT_WAIT) == 0
        assert output.exists()
    # The replay needs no service: it was stopped above.
    args = [str(output) if a == output.name else a for a in replay[0]]
    assert str(output) in args
    with listening(*args) as (server, url):
        again = [by_hand(url, f"Hello number {n}")[0] for n in range(chats)]
        # --once: it exits 0 by itself once every step was played.
        assert server.wait(timeout=EXIT_WAIT) == 0
    assert again == live
    assert all(re.search(rf"Hello number {n}", text) for n, text in enumerate(live))
