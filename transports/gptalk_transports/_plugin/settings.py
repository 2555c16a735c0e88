"""What the pytest plugin is told: record modes, settings and cassette paths.

Settings come from three places, the nearest winning: the ``gptalk_cassette``
marker's keyword arguments, then the ``gptalk_config`` fixture (a dict, like
pytest-recording's ``vcr_config``), then the defaults.  The record mode given
on the command line (``--gptalk-record-mode``) wins over all of them, so one
run can re-record a project whose configuration says ``once``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePath, PurePosixPath, PureWindowsPath
from typing import Any

from gptalk_proto import LocalProtocolError
from gptalk_proto.cassette import PROFILES, check_secrets

from .._config import Origin
from .._episodes import Matching

__all__ = [
    "MODES",
    "SETTINGS",
    "Settings",
    "cassette_name_problem",
    "default_cassette_name",
    "settings_problems",
    "shared_default_names",
    "url_problem",
]

#: The record modes, as pytest-recording names them (see the README's table).
MODES = ("none", "once", "new_episodes", "all", "rewrite")

#: The keys ``gptalk_config`` and the marker's keyword arguments take.
SETTINGS = (
    "record_mode",
    "secrets",
    "faults",
    "max_events",
    "allow_unplayed",
    "ignore_headers",
    "ignore_fields",
    "profile",
)

_SEQUENCES = ("secrets", "faults", "ignore_headers", "ignore_fields")


@dataclass(frozen=True)
class Settings:
    """One test's cassette settings, merged (see the module's docstring)."""

    record_mode: str = "none"
    secrets: tuple[str, ...] = ()
    faults: tuple[str, ...] = ()
    max_events: int | None = None
    #: Skip the check that every step of the episodes a test began was played.
    allow_unplayed: bool = False
    ignore_headers: tuple[str, ...] = ()
    ignore_fields: tuple[str, ...] = ()
    #: The API's profile (``gptalk``, ``generic``): None records under
    #: gptalk and replays under the cassette's own.
    profile: str | None = None

    @classmethod
    def merge(cls, *layers: Mapping[str, Any], cli_mode: str | None = None) -> Settings:
        """Later layers win; ``cli_mode`` wins over all.  The layers are
        checked first (:func:`settings_problems`)."""
        merged: dict[str, Any] = {}
        for layer in layers:
            merged.update(layer)
        for key in _SEQUENCES:
            if key in merged:
                merged[key] = tuple(merged[key])
        if cli_mode is not None:
            merged["record_mode"] = cli_mode
        return cls(**merged)

    @property
    def matching(self) -> Matching:
        return Matching.of(self.ignore_headers, self.ignore_fields, self.secrets)


def settings_problems(settings: object, where: str) -> list[str]:
    """What is wrong with a settings mapping, one line each."""
    if not isinstance(settings, Mapping):
        return [f"{where}: must be a dict of settings, not {type(settings).__name__}"]
    problems = []
    for key, value in settings.items():
        if key == "path":
            # Not a setting: the marker's first argument (the help once
            # wrote it "path=None", which reads as a keyword).
            problems.append(
                f"{where}: the cassette path is the marker's first argument: "
                f"gptalk_cassette({str(value)[:80]!r}), not path="
            )
        elif key not in SETTINGS:
            problems.append(f"{where}: unknown setting {key!r} (known: {', '.join(SETTINGS)})")
        elif key == "record_mode" and value not in MODES:
            problems.append(f"{where}: record_mode {value!r} is not one of {', '.join(MODES)}")
        elif key == "profile" and not (
            value is None or (isinstance(value, str) and value in PROFILES)
        ):
            problems.append(
                f"{where}: profile {str(value)[:40]!r} is not one of {', '.join(sorted(PROFILES))}"
            )
        elif key == "allow_unplayed" and not isinstance(value, bool):
            problems.append(f"{where}: allow_unplayed must be True or False")
        elif key == "max_events" and not (
            value is None or (isinstance(value, int) and not isinstance(value, bool) and value > 0)
        ):
            problems.append(f"{where}: max_events must be a positive int or None")
        elif key == "secrets":
            # A list of strings, each long enough to redact (check_secrets):
            # secrets="ab" would otherwise redact every "a" and "b".
            try:
                check_secrets(value)
            except LocalProtocolError as error:
                problems.append(f"{where}: {error}")
        elif key in ("faults", "ignore_headers", "ignore_fields") and (
            isinstance(value, (str, bytes))
            or not hasattr(value, "__iter__")
            or not all(isinstance(item, str) for item in value)
        ):
            problems.append(f"{where}: {key} must be a list of strings")
    return problems


def cassette_name_problem(name: object) -> str | None:
    """Why a marker's cassette path is refused, or None.

    A cassette path names a file inside the cassette folder: relative, with
    no ``..`` part.  A test that wants its cassettes elsewhere says so with
    the ``gptalk_cassette_dir`` ini option or fixture, never by escaping.
    """
    if not isinstance(name, str) or not name.strip():
        return f"the cassette path must be a non-empty string, not {name!r}"
    posix, windows = PurePosixPath(name), PureWindowsPath(name)
    if posix.is_absolute() or windows.anchor:
        return (
            f"the cassette path {name!r} is absolute; name a file inside the cassette "
            "folder (set gptalk_cassette_dir to change the folder)"
        )
    parts: tuple[str, ...] = (*posix.parts, *windows.parts)
    if ".." in parts:
        return (
            f"the cassette path {name!r} leaves the cassette folder; name a file inside it "
            "(set gptalk_cassette_dir to change the folder)"
        )
    if name.endswith(("/", "\\")) or PurePath(name).name in ("", "."):
        return f"the cassette path {name!r} names no file"
    return None


# What a file name keeps of a test's name: letters and digits of any script
# (``\w`` is str.isalnum() and "_"), "." and "-"; every run of other
# characters is one "_".  Non-ASCII letters are kept as they are: ``test_ü``
# is ``test_ü.json``, the name the user reads in the test id.
_UNSAFE = re.compile(r"[^\w.-]+")
# A test function's name with a parameter id of those characters only.
_SIMPLE_PARAMETRIZED = re.compile(r"[\w.-]+\[[\w.-]*\]")

#: Hex digits of the SHA-256 of the test's name that a default cassette name
#: ends with when its other characters were replaced: 32 bits, so two ids of
#: one test that read alike once replaced (``a/b``, ``a b``, ``a:b``) do not
#: share a file but by a one in four billion chance.
NAME_DIGEST_LENGTH = 8


def default_cassette_name(test: str) -> str:
    """The cassette file of a test without a marker path, from its name
    (``request.node.name``: the function's name and its parameter id).

    Characters a file name may not safely hold become ``_``: ``test_x`` is
    ``test_x.json``, ``test_x[a_b]`` is ``test_x_a_b_.json``, as before;
    letters and digits of any script stay (``test_ü`` is ``test_ü.json``).
    A name with any other character replaced (a ``/``, a space, a ``:``, a
    combining accent, pytest's ``\\x`` escape of a non-ASCII parameter id)
    also ends with ``-`` and :data:`NAME_DIGEST_LENGTH`
    hex digits of the SHA-256 of the name, so ``test_x[a/b]`` and
    ``test_x[a b]`` (``test_x_a_b_-<digits>.json``) are neither
    ``test_x[a_b]``'s file nor each other's.  Such a name holds a ``-`` and
    ends with a hex digit; a name left as it was holds no ``-`` (a
    function's name has none), and one with a simple parameter id ends with
    ``_``: the kinds never meet.  Names that still meet (``test_x[a_b]`` and
    ``test_x_a[b]``, or two classes' ``test_x``) are refused at collection
    (:func:`shared_default_names`).
    """
    name = _UNSAFE.sub("_", test)
    if name != test and not _SIMPLE_PARAMETRIZED.fullmatch(test):
        digest = hashlib.sha256(test.encode("utf-8", "surrogatepass")).hexdigest()
        name += "-" + digest[:NAME_DIGEST_LENGTH]
    return name + ".json"


def shared_default_names(tests: list[tuple[str, Path, str]]) -> list[str]:
    """Why tests are refused: ``(node id, module path, name)`` of each test
    that uses a cassette without a marker path; two in one module whose
    default cassette names are the same file would replay (or overwrite)
    each other's recording."""
    first: dict[tuple[Path, str], str] = {}
    problems = []
    for nodeid, module, name in tests:
        file = default_cassette_name(name)
        other = first.setdefault((module, file), nodeid)
        if other != nodeid:
            problems.append(
                f"{nodeid}: its default cassette {file} is {other}'s too; "
                "name one in its marker: gptalk_cassette('<file>.json')"
            )
    return problems


def url_problem(url: str) -> str | None:
    """Why ``--gptalk-url`` is refused, or None: what recording from it would
    raise at the setup of every recording test (the messages never quote a
    password)."""
    try:
        origin = Origin.parse(url)
    except LocalProtocolError as error:
        return str(error)
    if origin.path:
        # As Recording: a cassette's steps are told apart by their paths.
        return "recording a service under a base path is not supported: give its root URL"
    return None


def inside(folder: Path, path: Path) -> bool:
    """Whether ``path`` is inside ``folder`` once symbolic links are followed."""
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True
