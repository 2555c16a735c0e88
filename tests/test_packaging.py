"""What a user installs: the wheel and sdist, their metadata, the packaged schema,
the optional hypothesis extra, and a CLI that writes only where it is told."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from gptalk_transports import cassette_schema
from gptalk_transports._cli import main

from .console import gptalk

ROOT = Path(__file__).resolve().parent.parent
#: Seconds the build may take before the test fails (it takes well under one).
BUILD_TIMEOUT = 120


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A wheel and an sdist built from this tree by hatchling (the build backend)."""
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "hatchling", "build", "-d", str(out)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=BUILD_TIMEOUT,
    )
    (wheel,) = out.glob("*.whl")
    (sdist,) = out.glob("*.tar.gz")
    return wheel, sdist


def test_the_wheel_ships_the_license_the_schema_and_the_metadata(dist: tuple[Path, Path]) -> None:
    wheel, _ = dist
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        (metadata_name,) = (n for n in names if n.endswith(".dist-info/METADATA"))
        metadata = Parser().parsestr(archive.read(metadata_name).decode())
        (license_name,) = (n for n in names if n.endswith(".dist-info/licenses/LICENSE"))
        license_text = archive.read(license_name).decode()
        schema = archive.read("gptalk_proto/cassette/cassette.schema.json").decode()
    assert license_text.startswith("MIT License\n")
    assert "Copyright (c) 2026 gptalk-proto developers" in license_text
    assert license_text == (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert metadata["License-Expression"] == "MIT"
    assert metadata.get_all("License-File") == ["LICENSE"]
    urls = dict(url.split(", ", 1) for url in metadata.get_all("Project-URL") or [])
    assert {"Homepage", "Source", "Issues"} <= set(urls)
    assert all(url.startswith("https://") for url in urls.values())
    assert "hypothesis" in (metadata.get_all("Provides-Extra") or [])
    assert "hypothesis>=6.100; extra == 'hypothesis'" in (metadata.get_all("Requires-Dist") or [])
    # The schema a user's installed package reads is the one the wheel holds.
    assert schema == cassette_schema()
    # Data of the source tree stays out of the wheel.
    assert not any(n.startswith(("cassettes/", "tests/")) for n in names)


def test_the_sdist_ships_the_license_and_the_schema(dist: tuple[Path, Path]) -> None:
    _, sdist = dist
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert {"LICENSE", "gptalk_proto/cassette/cassette.schema.json", "pyproject.toml"} <= names
    assert "cassettes/plain-chat.json" in names
    # The tests build the documentation and run its examples.
    assert {"docs/conf.py", "docs/index.md", ".readthedocs.yaml"} <= names


def test_the_schema_has_one_copy_and_the_command_prints_it() -> None:
    copies = [p for p in ROOT.rglob("cassette.schema.json") if ".venv" not in p.parts]
    assert copies == [ROOT / "gptalk_proto" / "cassette" / "cassette.schema.json"]
    done = gptalk("cassette", "schema")
    assert done.returncode == 0, done.stderr
    assert done.stdout == cassette_schema()
    schema = json.loads(done.stdout)
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_rerecord_wants_an_explicit_target(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main(["cassette", "rerecord"], stdout=io.StringIO(), stderr=io.StringIO())
    assert exit_info.value.code == 2
    assert "-o/--dir" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == [], "nothing written into the current directory"
    out = io.StringIO()
    code = main(
        ["cassette", "rerecord", "-o", str(tmp_path / "here"), "--only", "plain-chat"],
        stdout=out,
        stderr=io.StringIO(),
    )
    assert code == 0
    assert [p.name for p in tmp_path.iterdir()] == ["here"]
    assert [p.name for p in (tmp_path / "here").iterdir()] == ["plain-chat.json"]


def test_the_strategies_without_hypothesis_say_what_to_install() -> None:
    # hypothesis is installed here: a None in sys.modules makes it missing.
    code = "import sys\nsys.modules['hypothesis'] = None\nimport gptalk_proto.testing.strategies\n"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last == (
        "ImportError: gptalk_proto.testing.strategies needs hypothesis: "
        "pip install 'gptalk-proto[hypothesis]'"
    )
    # Chained causes would add a second traceback: the hint stands alone.
    assert done.stderr.count("Traceback") == 1


def test_the_console_script_runs_the_entry_module_the_wheel_ships(
    dist: tuple[Path, Path],
) -> None:
    wheel, _ = dist
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        (entry_points,) = (n for n in names if n.endswith(".dist-info/entry_points.txt"))
        scripts = archive.read(entry_points).decode()
        shipped = archive.read("gptalk_cli.py").decode()
    assert "gptalk = gptalk_cli:run" in scripts.splitlines()
    assert shipped == (ROOT / "transports" / "gptalk_cli.py").read_text(encoding="utf-8")


#: A Ctrl-C while the command's modules are imported, made to happen there:
#: the import of the CLI raises KeyboardInterrupt, as the signal would.
_INTERRUPTED_IMPORT = """
import sys

class Interrupt:
    def find_spec(self, name, path=None, target=None):
        if name == "gptalk_transports._cli":
            raise KeyboardInterrupt
        return None

sys.meta_path.insert(0, Interrupt())
import gptalk_cli
gptalk_cli.run()
"""


def test_a_ctrl_c_while_the_command_is_imported_is_one_line() -> None:
    # Before, the console script imported gptalk_transports._cli itself, and
    # a Ctrl-C in its first third of a second printed the imports' traceback.
    done = subprocess.run(
        [sys.executable, "-c", _INTERRUPTED_IMPORT],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 130
    assert done.stderr == "gptalk: interrupted\n"
    assert done.stdout == ""
