"""How the plugin's fixtures write a test's recording to its cassette.

Tests that share a cassette may run at once on pytest-xdist workers (each a
process of its own).  The modes that add to a cassette (``all``,
``new_episodes``) therefore add to the file as it is when the test saves, not
to the copy loaded at setup, which another worker may have extended since;
and the read and the write are one step under a lock on the cassette's folder,
so no worker's episodes are written over.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gptalk_proto.cassette import Cassette, redact

from .._cassettes import CassetteFileError, load_cassette, save_cassette

if sys.platform != "win32":
    import fcntl

__all__ = ["save_recording"]

#: The record modes whose recording is added after what the cassette has.
ADDING = ("all", "new_episodes")


@contextmanager
def _folder_locked(folder: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``folder`` (released when the
    descriptor closes, also if the process dies).  The folder, not a lock file
    beside the cassettes: nothing is left in it.  Without ``fcntl`` (Windows)
    there is no lock, and workers adding to one cassette at once may lose one
    of their additions."""
    if sys.platform == "win32":  # pragma: no cover - Windows: no flock
        yield
        return
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)


def save_recording(path: Path, recorded: Cassette, mode: str, secrets: tuple[str, ...]) -> None:
    """Write what a test recorded to its cassette at ``path``: added after
    what the file has now in the adding modes (nothing new: the file stays as
    it is), else replacing it; then redacted with ``secrets``."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with _folder_locked(path.parent):
            if mode in ADDING and path.exists():
                if not recorded.interactions:
                    return
                recorded = load_cassette(path).extend(recorded)
            save_cassette(path, redact(recorded, secrets))
    except OSError as exc:
        # A folder that is a file, a name too long, a full disk: the
        # message, which names the file, not pathlib's frames.
        raise CassetteFileError(f"{path}: cannot write the cassette: {exc}") from None
