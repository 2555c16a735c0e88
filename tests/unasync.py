"""Generate the blocking ``_sync/`` modules from their async sources in ``_async/``.

httpcore's way: the async code is written once, and a small token rename makes
its blocking twin, committed beside it with a header that says so.  Run
``python -m tests.unasync`` after editing a file in ``_async/``;
``python -m tests.unasync --check`` (and tests/test_unasync.py) fails when a
committed file differs from what its source generates.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "transports" / "gptalk_transports"

#: The modules written once, in ``_async/``, with a blocking twin in ``_sync/``.
MODULES = (
    "cassette_client.py",
    "client.py",
    "connector.py",
    "driver.py",
    "episodes.py",
    "recording.py",
    "replay.py",
)

#: Whole phrases first (docstrings and the one type whose arity differs), then
#: names, then the keywords.  Names are matched as whole words.
PHRASES = (
    ("AsyncGenerator[list[ChatEvent], None]", "Generator[list[ChatEvent], None, None]"),
    ("GPTalk chats on asyncio or trio", "GPTalk chats over blocking sockets (thread-safe)"),
    (
        "A GPTalk client for asyncio and trio",
        "A blocking GPTalk client, safe to share among threads",
    ),
    ("The async driver loop", "The blocking driver loop"),
    ("await self._batches.__anext__()", "next(self._batches)"),
    ("``async with``", "``with``"),
    ("from anyio import current_time, sleep", "from time import monotonic as current_time, sleep"),
    ("Awaitable[T]", "T"),
    ("_backends.auto", "_backends.sync"),
)
NAMES = {
    "AsyncGenerator": "Generator",
    "AsyncIterator": "Iterator",
    "aclosing": "closing",
    "AsyncThreadLock": "ThreadLock",
    "AsyncByteStream": "SyncByteStream",
    "AsyncBackend": "SyncBackend",
    "AsyncLock": "SyncLock",
    "AsyncPool": "SyncPool",
    "AsyncConnectorProtocol": "SyncConnectorProtocol",
    "AsyncConnector": "SyncConnector",
    "AsyncChatStream": "ChatStream",
    "AsyncRecordingConnector": "SyncRecordingConnector",
    "_AsyncRecordingStream": "_SyncRecordingStream",
    "AsyncReplayConnector": "SyncReplayConnector",
    "_AsyncReplayStream": "_SyncReplayStream",
    "AsyncReplayClock": "SyncReplayClock",
    "AsyncEpisodeReplayConnector": "SyncEpisodeReplayConnector",
    "AsyncEpisodeConnector": "SyncEpisodeConnector",
    "_AsyncEpisodeStream": "_SyncEpisodeStream",
    "AsyncClient": "Client",
    "make_async_backend": "make_sync_backend",
    "__aenter__": "__enter__",
    "__aexit__": "__exit__",
    "__aiter__": "__iter__",
    "__anext__": "__next__",
    "StopAsyncIteration": "StopIteration",
    "aclose": "close",
}
KEYWORDS = (
    ("async def ", "def "),
    ("async with ", "with "),
    ("async for ", "for "),
    ("await ", ""),
)

_NAME = re.compile(r"(?<!\w)(" + "|".join(map(re.escape, NAMES)) + r")\b")


def header(name: str) -> str:
    return f"# GENERATED from _async/{name} by `python -m tests.unasync`; do not edit.\n"


def unasync(source: str, name: str) -> str:
    """The blocking twin of the async module ``name`` whose text is ``source``."""
    text = source
    for old, new in PHRASES:
        text = text.replace(old, new)
    text = _NAME.sub(lambda m: NAMES[m.group(1)], text)
    for old, new in KEYWORDS:
        text = text.replace(old, new)
    return tidy(header(name) + text, name)


def tidy(text: str, name: str) -> str:
    """Sort the imports, drop the ones left unused (``Awaitable``), sort
    ``__all__`` and format as the project does: the renames change names'
    order and lengths, and the generated files pass ``ruff`` too."""
    ruff = shutil.which("ruff")
    if ruff is None:
        raise RuntimeError("ruff is needed to generate _sync/ (the test extra has it)")
    where = str(PACKAGE / "_sync" / name)
    for argv in (
        ("check", "--fix", "--select", "I,F401,RUF022", "--quiet", "--exit-zero"),
        ("format", "--quiet"),
    ):
        text = subprocess.run(
            [ruff, *argv, "--stdin-filename", where, "-"],
            input=text,
            capture_output=True,
            text=True,
            check=True,
            cwd=PACKAGE.parent.parent,
        ).stdout
    return text


def generated() -> dict[Path, str]:
    """Every ``_sync/`` file as its ``_async/`` source generates it."""
    return {
        PACKAGE / "_sync" / name: unasync((PACKAGE / "_async" / name).read_text(), name)
        for name in MODULES
    }


def main(argv: list[str]) -> int:
    stale = [
        path for path, text in generated().items() if not path.exists() or path.read_text() != text
    ]
    if "--check" in argv:
        for path in stale:
            print(f"{path} is stale: run python -m tests.unasync", file=sys.stderr)
        return 1 if stale else 0
    for path, text in generated().items():
        path.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
