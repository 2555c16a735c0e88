"""The README and the documentation's pages are kept true by running them.

* Every ``python`` and ``sh`` block of README.md and of ``docs/**/*.md`` runs
  (in a scratch directory per page, in page order), except the README's
  set-up block, which CI runs on a fresh clone.  A block whose first line is
  ``# NAME.py`` is a file the next blocks of its page use.
* The generated parts (state diagram, command-line reference, fault table)
  equal what the code generates; ``python -m tests.readme_sync`` rewrites them.
* ``--help`` of every command is complete and says what the reference says.
* The README's links into ``docs/`` lead to pages that exist.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from gptalk_proto.server._faults import _KINDS
from gptalk_transports._cli import main

from .bench.run import HEADER
from .console import gptalk
from .readme_sync import (
    README,
    ROOT,
    Block,
    blocks,
    cassette_fields_section,
    cli_section,
    commands,
    fault_kinds,
    fault_section,
    generated,
    help_text,
    pages,
    section,
    state_diagram_section,
)

TEXT = README.read_text(encoding="utf-8")
BLOCKS = blocks(TEXT)
SETUP = BLOCKS[0]
FILE = re.compile(r"# (\S+\.py)\n")
#: Every page's blocks but the README's set-up block, by page.
PAGE_BLOCKS = {
    page.relative_to(ROOT).as_posix(): [
        b for b in blocks(page.read_text(encoding="utf-8")) if b != SETUP or page != README
    ]
    for page in pages()
}
EXAMPLES = [
    (page, b)
    for page, found in PAGE_BLOCKS.items()
    for b in found
    if b.lang in ("python", "sh") and not FILE.match(b.code)
]
# Long-running lines get a bounded form: the benchmark runs one quick part.
BENCH = "python -m tests.bench"
BENCH_SMOKE = [sys.executable, "-m", "tests.bench", "--quick", "--only", "replay"]


def test_the_setup_commands_come_first() -> None:
    assert SETUP.lang == "sh"
    assert TEXT.index("```sh") < TEXT.index("\n## "), "before any section"
    install, tests = SETUP.code.splitlines()
    assert "pip install -e '.[test]'" in install
    assert 'gptalk chat "' in install
    assert tests.endswith("python -m pytest")
    assert "awk" in (ROOT / ".ci" / "run").read_text(), "CI runs them from the README"


def test_the_state_diagram_is_drawn_from_the_table() -> None:
    assert section(generated("state-diagram"), "state-diagram") == state_diagram_section(), (
        "run: python -m tests.readme_sync"
    )


def test_the_cli_reference_is_generated_from_the_parser() -> None:
    assert section(generated("cli"), "cli") == cli_section(), "run: python -m tests.readme_sync"


def test_the_cassette_fields_are_drawn_from_the_schema() -> None:
    fields = section(generated("cassette-fields"), "cassette-fields")
    assert fields == cassette_fields_section(), "run: python -m tests.readme_sync"
    assert "| `interactions[].request.method` |" in fields


def test_the_fault_table_lists_every_kind() -> None:
    faults = generated("faults")
    assert fault_kinds(faults) == {kind: default for kind, (default, _) in _KINDS.items()}
    assert section(faults, "faults") == fault_section(), "run: python -m tests.readme_sync"


def test_the_benchmark_table_is_one_the_benchmark_printed() -> None:
    lines = section(generated("bench"), "bench").strip().splitlines()
    assert lines[0] == "| " + " | ".join(HEADER) + " |", "run: python -m tests.bench --markdown"
    rows = [line for line in lines[2:] if line.startswith("| ")]
    assert rows, "the latest table is missing"
    for row in rows:
        cells = row.strip("|").split(" | ")
        assert len(cells) == len(HEADER), row
        assert cells[-1].strip() in ("PASS", "FAIL", ""), row


def _words(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("name", [name for name, _ in commands()])
def test_help_is_complete_and_says_what_the_readme_says(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = dict(commands())[name]
    with pytest.raises(SystemExit) as exit_info:
        main([*name.split()[1:], "--help"], stdout=io.StringIO(), stderr=io.StringIO())
    assert exit_info.value.code == 0
    shown = _words(capsys.readouterr().out)
    assert parser.description is None or _words(parser.description) in shown
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
            continue
        assert action.help, f"{name}: {action.option_strings or action.dest} has no help"
        assert _words(help_text(action)) in shown
        for option in action.option_strings:
            assert option in shown
            assert re.search(rf"[` ]{re.escape(option)}\b", section(generated("cli"), "cli"))


def test_the_first_chat_prints_what_the_readme_shows() -> None:
    """The output sample after the set-up block is what a new user sees."""
    sample = next(b for b in BLOCKS if b.lang == "text" and b.code.startswith("$ gptalk chat "))
    assert TEXT.index(sample.code) < TEXT.index("\n## "), "right after the set-up"
    command, _, shown = sample.code.partition("\n")
    argv = shlex.split(command.removeprefix("$ "))
    assert argv[0] == "gptalk"
    assert argv[1:3] == ["chat", "Hello, how are you?"]
    assert argv[2] in SETUP.code, "the same chat as the set-up block's"
    result = gptalk(*argv[1:])
    assert result.returncode == 0, result.stderr
    assert result.stdout == shown


# -- the examples -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def workdirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A scratch directory per page, made when its first example runs."""
    return {}


def _workdir(workdirs: dict[str, Path], page: str, factory: pytest.TempPathFactory) -> Path:
    """The page's scratch directory, with the page's files in it."""
    if page not in workdirs:
        path = factory.mktemp(Path(page).stem)
        for block in PAGE_BLOCKS[page]:
            name = FILE.match(block.code)
            if block.lang == "python" and name is not None:
                (path / name[1]).write_text(block.code, encoding="utf-8")
        workdirs[page] = path
    return workdirs[page]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    # The venv's gptalk and python come first, as after ". .venv/bin/activate".
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env["PYTHONPATH"] = str(ROOT)  # for python -m tests.bench
    env.pop("PYTEST_ADDOPTS", None)
    return env


def _commands(block: Block) -> list[str]:
    lines = []
    for line in block.code.splitlines():
        command = line.split("  #", 1)[0].strip()
        if command and not command.startswith("#"):
            lines.append(command)
    return lines


def _check(result: subprocess.CompletedProcess[str], where: str) -> None:
    assert result.returncode == 0, f"{where}\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
    assert "Traceback" not in result.stderr, where


@pytest.mark.parametrize(("page", "block"), EXAMPLES, ids=[f"{p}:{b.line}" for p, b in EXAMPLES])
def test_the_example_runs(
    page: str,
    block: Block,
    workdirs: dict[str, Path],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    workdir = _workdir(workdirs, page, tmp_path_factory)
    where = f"{page} line {block.line}"
    if block.lang == "python":
        script = workdir / f"example_{block.line}.py"
        script.write_text(block.code, encoding="utf-8")
        result = subprocess.run(
            [sys.executable, "-W", "error", str(script)],
            cwd=workdir,
            env=_env(),
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        _check(result, where)
        return
    for command in _commands(block):
        if command.startswith(BENCH):
            if importlib.util.find_spec("aiohttp") is None:
                pytest.skip("the benchmark's peers are not installed")
            bench = subprocess.run(
                BENCH_SMOKE,
                cwd=ROOT,
                env=_env(),
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
            # A quick run's figures may miss targets (exit 1); it must run.
            assert bench.returncode in (0, 1), bench.stderr[-4000:]
            assert "rows," in bench.stdout
            continue
        if "gptalk_proto.testing.fuzz" in command and importlib.util.find_spec("atheris") is None:
            pytest.skip("atheris (the fuzz extra) is not installed")
        result = subprocess.run(
            ["bash", "-c", f"set -euo pipefail; {command}"],
            cwd=workdir,
            env=_env(),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        _check(result, f"{where}: {command}")


def test_every_example_is_run() -> None:
    # Only set-up, files, examples, output samples, diagrams and MyST
    # directives: nothing unrun slips in.
    run = {(page, b) for page, b in EXAMPLES}
    for page, found in PAGE_BLOCKS.items():
        others = [b for b in found if (page, b) not in run and not FILE.match(b.code)]
        langs = {b.lang for b in others if not b.lang.startswith("{")}
        assert langs <= {"text", "mermaid"}, page
    assert len(EXAMPLES) >= 12
    assert any(page == "README.md" for page, _ in EXAMPLES), "the README's tour runs"


def test_the_readme_links_lead_to_pages() -> None:
    links = re.findall(r"\]\((docs/[^)#]+)", TEXT)
    assert links, "the README links into the documentation"
    for link in links:
        assert (ROOT / link).is_file(), link
