"""The pytest plugin's folders, configuration and failure reports, as a
pytest-recording user expects them (inner pytest runs, in subprocesses)."""

from __future__ import annotations

import pytest

import gptalk_proto as g
import gptalk_proto.cassette
import gptalk_proto.server
from gptalk_transports._cassettes import load_cassette
from gptalk_transports._plugin.settings import (
    SETTINGS,
    Settings,
    cassette_name_problem,
    settings_problems,
)

from .plugin_cases import (
    CASSETTES,
    NOWHERE,
    assert_good_cassette,
    copy_shipped,
    folder,
    make_inner,
    prompts,
    report_section,
    run,
)

pytest_plugins = ("pytester",)


@pytest.fixture
def inner(pytester: pytest.Pytester) -> pytest.Pytester:
    return make_inner(pytester)


# -- paths stay in the cassette folder ----------------------------------------------------------

ESCAPING = """
import pytest


@pytest.mark.gptalk_cassette("../../../escaped.json")
def test_up(gptalk_client):
    gptalk_client.chat("out")


@pytest.mark.gptalk_cassette("ABSOLUTE")
def test_absolute(gptalk_client):
    gptalk_client.chat("out")


@pytest.mark.gptalk_cassette("sub/../../sideways.json")
def test_sideways(gptalk_client):
    gptalk_client.chat("out")


@pytest.mark.gptalk_cassette("inside/ok.json", record_mode="sometimes", colour="red")
def test_bad_settings(gptalk_client):
    gptalk_client.chat("out")


@pytest.mark.gptalk_cassette(path="inside/ok.json")
def test_path_keyword(gptalk_client):
    gptalk_client.chat("out")
"""


def test_paths_that_leave_the_cassette_folder_are_refused_at_collection(
    inner: pytest.Pytester,
) -> None:
    absolute = inner.path / "elsewhere" / "absolute.json"
    inner.makepyfile(test_paths=ESCAPING.replace("ABSOLUTE", str(absolute)))
    result = run(inner, "once")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: test_paths.py::test_up: gptalk_cassette: the cassette path "
            "'../../../escaped.json' leaves the cassette folder; *gptalk_cassette_dir*",
            f"test_paths.py::test_absolute: gptalk_cassette: the cassette path '{absolute}' "
            "is absolute*",
            "test_paths.py::test_sideways: gptalk_cassette: * leaves the cassette folder*",
            "test_paths.py::test_bad_settings: gptalk_cassette: record_mode 'sometimes' is "
            "not one of none, once, new_episodes, all, rewrite",
            "test_paths.py::test_bad_settings: gptalk_cassette: unknown setting 'colour'*",
            # As `pytest --markers` writes it: the path is the first argument.
            "test_paths.py::test_path_keyword: gptalk_cassette: the cassette path is the "
            "marker's first argument: gptalk_cassette('inside/ok.json'), not path=",
        ]
    )
    assert "Traceback" not in result.stderr.str()
    assert len(result.errlines) <= 9, result.errlines
    markers = run(inner, None, "--markers")
    markers.stdout.fnmatch_lines(["@pytest.mark.gptalk_cassette([[]path], *, record_mode, *"])
    # No test ran: nothing was written, inside or out.
    assert not (inner.path / "cassettes").exists()
    assert not absolute.parent.exists()
    assert not (inner.path.parent / "escaped.json").exists()


SAME_NAME = """
import gptalk_proto as g
import gptalk_proto.cassette
import gptalk_proto.server


def test_same(gptalk_client):
    assert gptalk_client.chat("PROMPT") == g.server.expected_reply("PROMPT")
"""


def test_each_module_has_its_own_cassette_folder(inner: pytest.Pytester) -> None:
    inner.makepyfile(
        test_one=SAME_NAME.replace("PROMPT", "from one"),
        test_two=SAME_NAME.replace("PROMPT", "from two"),
    )
    run(inner, "once").assert_outcomes(passed=2)
    for module in ("one", "two"):
        cassette = assert_good_cassette(
            inner.path / "cassettes" / f"test_{module}" / "test_same.json"
        )
        assert prompts(cassette) == [f"from {module}"]
    run(inner, "none", "--gptalk-url", NOWHERE).assert_outcomes(passed=2)


def test_the_ini_option_moves_the_base_folder(inner: pytest.Pytester) -> None:
    inner.makeini(
        "[pytest]\naddopts = --strict-markers -ra\nfilterwarnings = error\n"
        "gptalk_cassette_dir = recorded/here\n"
    )
    sub = inner.mkpydir("sub")
    (sub / "test_moved.py").write_text(SAME_NAME.replace("PROMPT", "moved"), encoding="utf-8")
    run(inner, "once").assert_outcomes(passed=1)
    # Relative to the ini file, not to the test file.
    cassette = assert_good_cassette(inner.path / "recorded/here/test_moved/test_same.json")
    assert prompts(cassette) == ["moved"]
    assert not (sub / "cassettes").exists()
    run(inner, "none", "--gptalk-url", NOWHERE).assert_outcomes(passed=1)


SHARED_FOLDER = """
import pytest

import gptalk_proto as g
import gptalk_proto.cassette
import gptalk_proto.server


@pytest.fixture(scope="module")
def gptalk_cassette_dir(request):
    return request.path.parent / "shared"


@pytest.mark.gptalk_cassette("plain-chat.json")
def test_shared(gptalk_client):
    prompt = "Hello, how are you?"
    assert gptalk_client.chat(prompt) == g.server.expected_reply(prompt)
"""


def test_the_fixture_moves_a_modules_folder(inner: pytest.Pytester) -> None:
    shared = inner.mkdir("shared")
    (shared / "plain-chat.json").write_bytes((CASSETTES / "plain-chat.json").read_bytes())
    inner.makepyfile(test_shared=SHARED_FOLDER)
    run(inner, "none", "--gptalk-url", NOWHERE).assert_outcomes(passed=1)
    assert not (inner.path / "cassettes").exists()


# -- project-wide configuration -----------------------------------------------------------------

CONFIG_CONFTEST = """
import pytest


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request):
    return request.param


@pytest.fixture(scope="module")
def gptalk_config():
    return {
        "record_mode": "once",
        "secrets": ["Sesame"],
        "faults": ["newline=crlf"],
        "ignore_fields": ["temperature"],
    }
"""

CONFIG_TESTS = """
import pytest

import gptalk_proto as g
import gptalk_proto.cassette
import gptalk_proto.server


def test_secret(gptalk_client):
    assert gptalk_client.chat("Open Sesame") == g.server.expected_reply("Open Sesame")


def test_plain(gptalk_client):
    assert gptalk_client.chat("Hello") == g.server.expected_reply("Hello")


@pytest.mark.gptalk_cassette("never-recorded.json", record_mode="none")
def test_marker_wins(gptalk_client):
    raise AssertionError("never reached")
"""


def test_gptalk_config_sets_every_cassette_and_markers_win(inner: pytest.Pytester) -> None:
    inner.makeconftest(CONFIG_CONFTEST)
    inner.makepyfile(test_config=CONFIG_TESTS)
    # No record-mode flag: the configuration's "once" records.
    first = run(inner, None)
    first.assert_outcomes(passed=2, errors=1)
    first.stdout.fnmatch_lines(["no cassette at *never-recorded.json; record it with *"])
    where = folder(inner, "test_config")
    secret = where / "test_secret.json"
    assert_good_cassette(secret)
    assert "Sesame" not in secret.read_text(encoding="utf-8"), "the configured secret"
    path = where / "test_plain.json"
    cassette = assert_good_cassette(path)
    # The configured fault: the reference server ended its lines with CRLF.
    stream = cassette.interactions[-1]
    assert b"\r\n\r\n" in stream.response.wire.split(b"\r\n\r\n", 1)[1]
    # The ignored field may differ: the replay matches without it.
    text = path.read_text(encoding="utf-8")
    changed = text.replace('"temperature": 0,', '"temperature": 1,')
    assert changed != text
    path.write_text(changed, encoding="utf-8")
    second = run(inner, None, "--gptalk-url", NOWHERE, "-k", "test_plain")
    second.assert_outcomes(passed=1)
    # The command line wins over the configuration (and the markers).
    third = run(inner, "rewrite", "-k", "test_plain or test_marker_wins")
    third.assert_outcomes(passed=1, failed=1)
    assert load_cassette(path).interactions[1].request.json()["temperature"] == 0
    # The marker's "none" would have stopped it at setup: it ran, and failed,
    # so its recording was not written.
    third.stdout.fnmatch_lines(["E   *AssertionError: never reached"])
    assert not (where / "never-recorded.json").exists()


def test_a_bad_gptalk_config_is_one_clear_line(inner: pytest.Pytester) -> None:
    inner.makeconftest(
        CONFIG_CONFTEST.replace('"ignore_fields"', '"max_events": 0, "ignore_field"')
    )
    inner.makepyfile(test_config=CONFIG_TESTS)
    result = run(inner, None, "-k", "test_plain")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "gptalk_config: max_events must be a positive int or None",
            "gptalk_config: unknown setting 'ignore_field' (known: record_mode, *)",
        ]
    )
    assert len(report_section(result, "ERROR at setup of test_plain")) <= 3


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("notaurl", "expected an http:// or https:// URL, got 'notaurl'"),
        ("ftp://user:hunter2-pw@example.com", "expected an http:// or https:// URL, got *"),
        ("http://user:hunter2-pw@127.0.0.1:1", "the service URL must not carry credentials"),
        ("http://127.0.0.1:1/v1", "recording a service under a base path is not supported*"),
    ],
)
def test_a_bad_gptalk_url_is_one_usage_line(inner: pytest.Pytester, url: str, problem: str) -> None:
    # Refused before any test runs, once, not as every recording test's
    # setup error with the library's traceback; the password never shown.
    inner.makepyfile(test_config=CONFIG_TESTS)
    result = run(inner, "rewrite", f"--gptalk-url={url}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: --gptalk-url: {problem}"])
    assert "Traceback" not in result.stderr.str() + result.stdout.str()
    assert "hunter2-pw" not in result.stderr.str() + result.stdout.str()
    assert not (inner.path / "cassettes").exists()


UNWRITABLE = """
import pytest

import gptalk_proto as g
import gptalk_proto.cassette
import gptalk_proto.server


def test_folder_is_a_file(gptalk_client):
    assert gptalk_client.chat("Hello") == g.server.expected_reply("Hello")


@pytest.mark.gptalk_cassette("NAME")
def test_name_too_long(gptalk_client):
    assert gptalk_client.chat("Hello") == g.server.expected_reply("Hello")
"""


def test_a_cassette_that_cannot_be_written_or_looked_at_is_one_clear_error(
    inner: pytest.Pytester,
) -> None:
    # The module's cassette folder is a file; a name is longer than a file
    # system takes.  Each is the error's message naming the file, not the
    # plugin's frames (pathlib's OSError from exists(), mkdir or unlink).
    inner.makepyfile(
        test_unwritable=UNWRITABLE.replace("NAME", "unused.json"),
        test_too_long=UNWRITABLE.replace("NAME", "n" * 300 + ".json"),
    )
    (inner.path / "cassettes" / "test_too_long").mkdir(parents=True)
    (inner.path / "cassettes" / "test_unwritable").write_text("mine", encoding="utf-8")
    result = run(inner, "once", "-k", "test_unwritable and folder or test_too_long and name")
    result.assert_outcomes(passed=1, errors=2)
    result.stdout.fnmatch_lines(
        [
            "*nnnn.json: cannot read the cassette: File name too long",
            "*test_folder_is_a_file.json: cannot write the cassette: "
            "[[]Errno 17[]] File exists: '*test_unwritable'",
        ]
    )
    result.stdout.no_fnmatch_line("*pathlib.py*")
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
    assert (inner.path / "cassettes" / "test_unwritable").read_text(encoding="utf-8") == "mine"


def test_the_longest_cassette_name_a_file_system_takes_is_saved(inner: pytest.Pytester) -> None:
    # 255 bytes: the temporary file beside it must not need a longer name.
    name = "n" * 250 + ".json"
    inner.makepyfile(test_long=UNWRITABLE.replace("NAME", name))
    run(inner, "once", "-k", "test_name_too_long").assert_outcomes(passed=1)
    assert sorted(path.name for path in folder(inner, "test_long").iterdir()) == [name]


# -- short failures -----------------------------------------------------------------------------

FAILING = """
import pytest

from gptalk_transports import RetryPolicy


@pytest.mark.gptalk_cassette("plain-chat.json")
def test_mismatch(gptalk_client):
    gptalk_client.chat("Not what was recorded")


@pytest.mark.anyio
@pytest.mark.gptalk_cassette("plain-chat.json")
async def test_mismatch_async(gptalk_async_client):
    async with gptalk_async_client as client:
        await client.chat("Not what was recorded")


@pytest.mark.gptalk_cassette("missing.json")
def test_missing(gptalk_client):
    pass


@pytest.mark.gptalk_cassette("503-then-retry.json")
def test_unplayed(gptalk_cassette):
    with gptalk_cassette.client(retry=RetryPolicy(retries=0)) as client:
        with pytest.raises(Exception):
            client.chat("Are you there?")
"""

#: The most lines one failure's report may take: its header, the fixtures'
#: values, the test's own lines (decorators, signature, up to the failing
#: call), the error with its differences, and the location.
SHORT = 14


def test_failures_are_the_message_and_the_differences(inner: pytest.Pytester) -> None:
    copy_shipped(inner, "plain-chat.json", "test_failing")
    copy_shipped(inner, "503-then-retry.json", "test_failing")
    inner.makepyfile(test_failing=FAILING)
    result = run(inner, "none", "--gptalk-url", NOWHERE)
    result.assert_outcomes(passed=1, failed=3, errors=2)
    diff = "*body.content: recorded '\"Hello, how are you?\"', sent '\"Not what was recorded\"'"
    titles = {
        "test_mismatch": ["*CassetteMismatch: request 2 does not match the cassette*", diff],
        "test_mismatch_async[asyncio]": ["*CassetteMismatch: request 2 *", diff],
        "test_mismatch_async[trio]": ["*CassetteMismatch: request 2 *", diff],
        "ERROR at setup of test_missing": ["no cassette at *missing.json; record it with *"],
        "ERROR at teardown of test_unplayed": ["*steps 3 (text), 4 (stream) were never reached"],
    }
    for title, expected in titles.items():
        lines = report_section(result, title)
        assert len(lines) <= SHORT, "\n".join(lines)
        pytest.LineMatcher(lines).fnmatch_lines(expected)
        # None of the library's frames.
        ours = ("/gptalk_transports/", "/gptalk_proto/", "/_pytest/", "/anyio/", "/trio/")
        assert not [line for line in lines if any(name in line for name in ours)]
    # The test's own line is shown, where the mismatch happened.
    pytest.LineMatcher(report_section(result, "test_mismatch")).fnmatch_lines(
        [
            '>       gptalk_client.chat("Not what was recorded")',
            "test_failing.py:*: CassetteMismatch",
        ]
    )
    # --full-trace still shows everything.
    full = run(inner, "none", "--gptalk-url", NOWHERE, "--full-trace", "-k", "test_mismatch")
    assert len(report_section(full, "test_mismatch")) > 40
    assert g.cassette.CassetteMismatch.__name__ in full.stdout.str()


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("ok.json", None),
        ("deeper/still/ok.json", None),
        ("a/./b.json", None),
        ("..", "leaves the cassette folder"),
        ("a/../../b.json", "leaves the cassette folder"),
        ("..\\b.json", "leaves the cassette folder"),
        ("/etc/x.json", "is absolute"),
        ("C:\\x.json", "is absolute"),
        ("\\\\host\\share\\x.json", "is absolute"),
        ("", "must be a non-empty string"),
        ("   ", "must be a non-empty string"),
        (None, "must be a non-empty string"),
        (b"x.json", "must be a non-empty string"),
        ("dir/", "names no file"),
        (".", "names no file"),
    ],
)
def test_which_cassette_paths_are_refused(name: object, problem: str | None) -> None:
    found = cassette_name_problem(name)
    assert found is None if problem is None else (found is not None and problem in found), found


def test_settings_are_checked_one_line_each() -> None:
    assert settings_problems({"record_mode": "once", "allow_unplayed": True}, "w") == []
    assert settings_problems([("record_mode", "once")], "w") == [
        "w: must be a dict of settings, not list"
    ]
    assert settings_problems(
        {"allow_unplayed": "yes", "max_events": True, "faults": "cut=3", "ignore_fields": [1]},
        "w",
    ) == [
        "w: allow_unplayed must be True or False",
        "w: max_events must be a positive int or None",
        "w: faults must be a list of strings",
        "w: ignore_fields must be a list of strings",
    ]
    merged = Settings.merge(
        {"record_mode": "once", "faults": ["cut=3"]},
        {"record_mode": "none", "ignore_headers": ["X-A"]},
        cli_mode="rewrite",
    )
    assert merged == Settings(record_mode="rewrite", faults=("cut=3",), ignore_headers=("X-A",))
    assert merged.matching.ignore_headers == {"x-a"}
    assert set(SETTINGS) == set(Settings.__dataclass_fields__)


def test_the_profile_setting_names_a_profile() -> None:
    assert settings_problems({"profile": "generic"}, "w") == []
    assert settings_problems({"profile": None}, "w") == []
    assert settings_problems({"profile": "openaii"}, "w") == [
        "w: profile 'openaii' is not one of generic, gptalk"
    ]
    assert settings_problems({"profile": ["generic"]}, "w") == [
        "w: profile \"['generic']\" is not one of generic, gptalk"
    ]
    assert Settings.merge({"profile": "generic"}, {}).profile == "generic"
