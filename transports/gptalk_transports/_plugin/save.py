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

__all__ = ["RUN_LOG", "WrittenThisRun", "save_recording"]

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


def save_recording(
    path: Path,
    recorded: Cassette,
    mode: str,
    secrets: tuple[str, ...],
    written: WrittenThisRun | None = None,
) -> None:
    """Write what a test recorded to its cassette at ``path``: added after
    what the file has now in the adding modes (nothing new: the file stays as
    it is), else replacing it; then redacted with ``secrets``.  With
    ``written``, ``once`` and ``rewrite`` add to a cassette this run wrote,
    as the file is at the save (another worker may have written it since
    the test began)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with _folder_locked(path.parent):
            if written is not None:
                mode = written.mode(path, mode)
            if mode in ADDING and path.exists():
                if not recorded.interactions:
                    return
                recorded = load_cassette(path).extend(recorded)
            save_cassette(path, redact(recorded, secrets))
            if written is not None:
                written.wrote(path)
    except OSError as exc:
        # A folder that is a file, a name too long, a full disk: the
        # message, which names the file, not pathlib's frames.
        raise CassetteFileError(f"{path}: cannot write the cassette: {exc}") from None


#: The ``workerinput`` key that names the run's log to pytest-xdist workers.
RUN_LOG = "gptalk_cassettes_written"


class WrittenThisRun:
    """The cassettes this test run wrote, so that tests sharing one build it
    together: ``once`` goes on recording a cassette this run created (as
    ``new_episodes``: replay what the earlier tests recorded, record the
    rest), and ``rewrite`` adds to one this run rewrote (as ``all``), instead
    of replaying only the first test's chats or keeping only the last's.

    Only the plugin's own saves count (a cassette a fixture copied in during
    the run is not the run's recording).  Under pytest-xdist the workers also
    list what they wrote in ``log``, a file the controller names (in the
    temporary folder) and removes at the end of the run; an entry is written
    under the cassette folder's lock, with the cassette.
    """

    def __init__(self, log: Path | None = None) -> None:
        self.log = log
        #: The cassettes this process wrote: one path per cassette file the
        #: run's tests use, so no larger than the test suite's cassettes
        #: (the log, likewise, holds a line per save).
        self._paths: set[bytes] = set()

    def mode(self, path: Path, mode: str) -> str:
        """The record mode a test of ``path`` records in (see the class)."""
        if mode not in ("once", "rewrite") or not self._ours(path):
            return mode
        return "new_episodes" if mode == "once" else "all"

    def mode_at_setup(self, path: Path, mode: str) -> str:
        """:meth:`mode` under the folder's lock (a worker's save and its
        log entry are seen together), if the folder is there."""
        if mode not in ("once", "rewrite"):
            return mode
        try:
            with _folder_locked(path.parent):
                return self.mode(path, mode)
        except OSError:  # no folder: no cassette saved there yet
            return self.mode(path, mode)

    def _ours(self, path: Path) -> bool:
        key = _key(path)
        if key in self._paths:
            return True
        if self.log is None:
            return False
        try:
            return key in self.log.read_bytes().split(b"\0")
        except OSError:  # no worker wrote yet
            return False

    def wrote(self, path: Path) -> None:
        key = _key(path)
        if key in self._paths:
            return
        self._paths.add(key)
        if self.log is not None:
            # NUL-separated: a path holds no NUL.
            with self.log.open("ab") as log:
                log.write(key + b"\0")


def _key(path: Path) -> bytes:
    return os.fsencode(os.path.abspath(path))
