"""Record and replay: cassette files, the recording's state, replay timing.

The connectors that tee and play are in ``_async/recording.py`` and
``_async/replay.py`` (and their generated blocking twins); what they share,
and need no IO for, is here:

* Recording wraps any connector.  Every byte the client writes or reads goes
  through a :class:`~gptalk_proto.cassette.Recorder` as it passes, so a recorded chat
  behaves exactly like a live one.  An endless stream stops cleanly at
  ``[DONE]`` (the client stops), at an event limit, or after an idle timeout:
  the recording then ends the stream as the server closing it.
* Replay never touches the network: the connector's streams play the server
  side from the cassette, and the client parses the recorded bytes through its
  normal path.  Timing is instant by default, or as recorded (``speed=1``),
  scaled, or with gaps capped, on an injectable clock; the bytes can be cut
  again into single bytes or seeded random pieces.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from secrets import token_hex

from gptalk_proto import LocalProtocolError
from gptalk_proto.cassette import (
    Cassette,
    CassetteError,
    Recorder,
    ReplayTiming,
    rechunker,
)

from ._config import Origin
from ._handshake import RequestOptions

__all__ = [
    "CassetteFileError",
    "Recording",
    "ReplayTiming",
    "load_cassette",
    "save_cassette",
    "write_atomically",
]


class CassetteFileError(CassetteError):
    """A cassette file cannot be read at all (missing, a directory, no access)."""


#: The largest cassette file read, in bytes: far past any recording (the
#: shipped ones are under 1 MB; loading parses the whole text, several times
#: its size in memory), and a bound for a name of no known size: /dev/zero or
#: an endless pipe was read until memory ran out.
MAX_CASSETTE_BYTES = 1 << 30


def load_cassette(path: str | Path) -> Cassette:
    """Read, validate and re-parse a cassette file.

    Raises :class:`CassetteError` whose message starts with the file's name,
    then the field (``x.json: interactions[2].chunks[5].t: ...``);
    :class:`CassetteFileError` if the file cannot be read.
    """
    try:
        with Path(path).open("rb") as stream:
            text = stream.read(MAX_CASSETTE_BYTES + 1)
    except OSError as exc:
        raise CassetteFileError(
            f"{path}: cannot read the cassette: {exc.strerror or exc}"
        ) from None
    if len(text) > MAX_CASSETTE_BYTES:
        raise CassetteFileError(f"{path}: larger than {MAX_CASSETTE_BYTES} bytes: not a cassette")
    try:
        return Cassette.loads(text)
    except CassetteError as error:
        raise CassetteError(f"{path}: {error}") from None


def write_atomically(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to a temporary file beside ``path``, then move
    it over ``path``: readers see the old file or the new one, never half of
    one, and a failed write leaves nothing behind (``OSError`` is raised).

    A name that is there but is no regular file (``/dev/null``, ``/dev/full``,
    ``/dev/stdout``, a FIFO) is written to as it is: a file moved over it
    would replace the device node itself.  Through a symbolic link, the file
    it names is replaced, not the link."""
    target = Path(path)
    if target.exists() and not target.is_file():
        with target.open("w", encoding="utf-8") as stream:
            stream.write(text)
        return
    if target.is_symlink():
        # realpath, not resolve(): a link in a loop stays itself, no RuntimeError.
        target = Path(os.path.realpath(target))
    # A name of its own, created exclusively: two writers of one file (the
    # pytest-xdist workers of tests sharing a cassette) with one temporary
    # name truncated each other's half-written file, and the second's move
    # failed.  (Not tempfile: its files are private, 0600, and the cassette
    # would keep that mode.)  The target's name is cut (50 characters, at
    # most 200 bytes) so that any name a file system takes has a temporary
    # name it takes too (255 bytes).
    temporary = target.with_name(f"{target.name[:50]}.{os.getpid()}-{token_hex(4)}.tmp")
    try:
        with temporary.open("x", encoding="utf-8") as file:
            file.write(text)
        temporary.replace(target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def save_cassette(path: str | Path, cassette: Cassette) -> None:
    """Write a cassette (deterministic JSON), creating its folder; the write
    is atomic."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(target, cassette.dumps())


# -- recording ----------------------------------------------------------------------


class Recording:
    """One recording session, shared by the connections of one client.

    Args:
        origin: the service URL.
        max_events: end a stream after this many events.
        idle_timeout: end a stream silent for this many seconds.
        clock: monotonic seconds (time offsets in the cassette count from the
            first call).
    """

    def __init__(
        self,
        origin: str,
        *,
        max_events: int | None = None,
        idle_timeout: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if Origin.parse(origin).path:
            # A cassette tells its steps apart (login, text, stream) by their
            # paths, and replays them at the root: a prefix would break both.
            raise LocalProtocolError(
                "recording a service under a base path is not supported: give its root URL"
            )
        self.recorder = Recorder(origin, max_events=max_events)
        self.idle_timeout = idle_timeout
        self._clock = clock
        self._start = clock()
        self.recorded_at = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

    def t(self) -> float:
        """Seconds since the recording started (the cassette's time offsets)."""
        return self._clock() - self._start

    # What both recording streams decide, apart from their IO:

    def read_limit(self, timeout: float | None) -> float | None:
        """How long a recorded read may wait: the client's timeout or the idle
        timeout, whichever is shorter."""
        idle = self.idle_timeout
        return timeout if idle is None else (idle if timeout is None else min(idle, timeout))

    def idle_ended(self, timeout: float | None) -> bool:
        """Whether a read that timed out under :meth:`read_limit` ends a silent
        stream (else it was the client's own read timeout)."""
        idle = self.idle_timeout
        return idle is not None and (timeout is None or timeout > idle)

    def received(self, number: int, data: bytes) -> tuple[int, bool]:
        """Record ``data`` read on connection ``number``: how much of it the
        client gets, and whether the recording ends the stream there."""
        keep = self.recorder.received(number, data, self.t())
        return keep, self.recorder.should_stop(number)

    def cassette(self, *, redact: bool = True, secrets: tuple[str, ...] = ()) -> Cassette:
        """The cassette recorded so far, redacted unless ``redact=False``
        (``secrets``: more values to redact)."""
        return self.recorder.cassette(recorded_at=self.recorded_at, redact=redact, secrets=secrets)


# -- replay --------------------------------------------------------------------------


#: Cap on the cassette origins whose request options are remembered (see
#: replay_options): a test suite replays a few origins, many times each.
MAX_REMEMBERED_ORIGINS = 64


@lru_cache(maxsize=MAX_REMEMBERED_ORIGINS)
def replay_options(origin: str) -> RequestOptions:
    """The options a replaying client's requests get: the ``Host`` of the
    cassette's ``origin``, as when it was recorded."""
    return RequestOptions(Origin.parse(origin).host_header)


def _cutter(rechunk: str | int) -> Callable[[bytes], list[bytes]]:
    """``"recorded"`` keeps the reads as they were; ``"bytes"`` gives single
    bytes; an int seeds random pieces of 1 to 64 bytes."""
    if isinstance(rechunk, int) and not isinstance(rechunk, bool):
        return rechunker(random.Random(rechunk).randint)
    if rechunk in ("recorded", "bytes"):
        return rechunker(rechunk)
    raise ValueError(f"rechunk must be 'recorded', 'bytes' or an int seed, not {rechunk!r}")
