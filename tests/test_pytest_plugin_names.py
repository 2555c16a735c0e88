"""The pytest plugin's default cassette names: one file per test, the names
users' cassettes already have kept (inner pytest runs, in subprocesses)."""

from __future__ import annotations

import re

import pytest

from gptalk_transports._plugin.settings import NAME_DIGEST_LENGTH, default_cassette_name

from .plugin_cases import INI, NOWHERE, assert_good_cassette, folder, make_inner, run

pytest_plugins = ("pytester",)


@pytest.fixture
def inner(pytester: pytest.Pytester) -> pytest.Pytester:
    return make_inner(pytester)


def test_simple_names_are_kept_and_others_told_apart() -> None:
    # The names cassettes were saved under before: unchanged.
    kept = {
        "test_x": "test_x.json",
        "test_x[1]": "test_x_1_.json",
        "test_async[asyncio]": "test_async_asyncio_.json",
        "test_x[a_b]": "test_x_a_b_.json",
        "test_x[a-b.c]": "test_x_a-b.c_.json",
    }
    for name, file in kept.items():
        assert default_cassette_name(name) == file
    # Names whose other characters were replaced: the old name and a digest.
    replaced = ["test_x[a/b]", "test_x[a b]", "test_x[a:b]", "test_x[a//b]", "t[[x]]"]
    # (pytest's own escape of a non-ASCII id, and a combining mark: not
    # letters, so replaced too.)
    replaced += ["test_x[caf\\xe9]", "test_x[cafe\u0301]"]
    files = [default_cassette_name(name) for name in replaced]
    assert len({*files, *kept.values()}) == len(files) + len(kept)
    for name, file in zip(replaced, files, strict=True):
        old = re.sub(r"[^\w.-]+", "_", name)
        assert re.fullmatch(re.escape(old) + f"-[0-9a-f]{{{NAME_DIGEST_LENGTH}}}\\.json", file)
        assert default_cassette_name(name) == file  # the same every run


def test_non_ascii_letters_and_digits_are_kept() -> None:
    # Letters and digits of any script are a file name's as they are (no
    # digest: the name a user sees in the test id is the file's).
    kept = {
        "test_ü": "test_ü.json",
        "test_x[café]": "test_x_café_.json",
        "test_数据[٣]": "test_数据_٣_.json",
    }
    for name, file in kept.items():
        assert default_cassette_name(name) == file
    # Replaced characters still add the digest, so two names that read
    # alike once replaced are two files.
    spaced = default_cassette_name("test_ü[a b]")
    assert re.fullmatch(f"test_ü_a_b_-[0-9a-f]{{{NAME_DIGEST_LENGTH}}}\\.json", spaced)
    assert spaced != default_cassette_name("test_ü[a_b]") == "test_ü_a_b_.json"


IDS = """
import pytest

import gptalk_proto as g
import gptalk_proto.server


@pytest.mark.parametrize("case", ["a/b", "a_b", "a b"])
def test_x(gptalk_client, case):
    prompt = "Hello " + case
    assert gptalk_client.chat(prompt) == g.server.expected_reply(prompt)
"""


def test_ids_that_read_alike_once_replaced_have_their_own_cassettes(
    inner: pytest.Pytester,
) -> None:
    inner.makepyfile(test_ids=IDS)
    # Each records its own chat: none replays another's.
    run(inner, "once").assert_outcomes(passed=3)
    where = folder(inner, "test_ids")
    files = sorted(path.name for path in where.iterdir())
    assert len(files) == 3
    assert "test_x_a_b_.json" in files  # the simple id's name, as before
    for name in files:
        assert_good_cassette(where / name)
    # And each replays its own, with no server to record from.
    run(inner, "none", "--gptalk-url", NOWHERE).assert_outcomes(passed=3)


UNICODE = """
import pytest

import gptalk_proto as g
import gptalk_proto.server


def test_ü(gptalk_client):
    assert gptalk_client.chat("Grüße") == g.server.expected_reply("Grüße")


@pytest.mark.parametrize("case", ["café", "cafe", "ca fé"])
def test_x(gptalk_client, case):
    assert gptalk_client.chat(case) == g.server.expected_reply(case)
"""

#: pytest escapes non-ASCII parameter ids (caf\\xe9) unless told not to.
UNESCAPED_IDS = "disable_test_id_escaping_and_forfeit_all_rights_to_community_support = true\n"


def test_non_ascii_names_record_and_replay_under_their_own_names(
    inner: pytest.Pytester,
) -> None:
    inner.makeini(INI + UNESCAPED_IDS)
    inner.makepyfile(test_uni=UNICODE)
    run(inner, "once").assert_outcomes(passed=4)
    where = folder(inner, "test_uni")
    files = sorted(path.name for path in where.iterdir())
    spaced = default_cassette_name("test_x[ca fé]")
    assert files == sorted(["test_ü.json", "test_x_café_.json", "test_x_cafe_.json", spaced])
    assert spaced.startswith("test_x_ca_fé_-")
    for name in files:
        assert_good_cassette(where / name)
    run(inner, "none", "--gptalk-url", NOWHERE).assert_outcomes(passed=4)


UNICODE_SHARED = """
import pytest


@pytest.mark.parametrize("case", ["é_b"])
def test_ü(gptalk_client, case):
    pass


@pytest.mark.parametrize("case", ["b"])
def test_ü_é(gptalk_client, case):
    pass
"""


def test_non_ascii_default_names_still_shared_are_refused(inner: pytest.Pytester) -> None:
    inner.makeini(INI + UNESCAPED_IDS)
    inner.makepyfile(test_shared=UNICODE_SHARED)
    result = run(inner, "once")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: test_shared.py::test_ü_é[[]b]: its default cassette test_ü_é_b_.json is "
            "test_shared.py::test_ü[[]é_b]'s too; name one in its marker: *",
        ]
    )


SHARED = """
import pytest


@pytest.mark.parametrize("case", ["a_b"])
def test_x(gptalk_client, case):
    pass


@pytest.mark.parametrize("case", ["b"])
def test_x_a(gptalk_client, case):
    pass


class TestOne:
    def test_same(self, gptalk_client):
        pass


class TestTwo:
    def test_same(self, gptalk_client):
        pass


@pytest.mark.gptalk_cassette("named.json")
def test_x_a_b_(gptalk_client):
    pass
"""


def test_default_names_still_shared_are_refused_at_collection(inner: pytest.Pytester) -> None:
    inner.makepyfile(test_shared=SHARED)
    result = run(inner, "once")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: test_shared.py::test_x_a[[]b]: its default cassette test_x_a_b_.json is "
            "test_shared.py::test_x[[]a_b]'s too; name one in its marker: *",
            "test_shared.py::TestTwo::test_same: its default cassette test_same.json is "
            "test_shared.py::TestOne::test_same's too; *",
        ]
    )
    # The test with a marker path shares nothing.
    assert "test_shared.py::test_x_a_b_" not in result.stderr.str().replace("test_x_a_b_.json", "")
    assert not (inner.path / "cassettes").exists()
