"""The blocking ``_sync/`` modules are exactly what their ``_async/`` sources generate."""

from __future__ import annotations

import shutil

import pytest

from . import unasync

NEEDS_RUFF = pytest.mark.skipif(
    shutil.which("ruff") is None, reason="generating needs ruff (the test extra)"
)


@NEEDS_RUFF
@pytest.mark.parametrize("name", unasync.MODULES)
def test_sync_twin_is_generated(name: str) -> None:
    source = (unasync.PACKAGE / "_async" / name).read_text()
    committed = (unasync.PACKAGE / "_sync" / name).read_text()
    assert committed == unasync.unasync(source, name), (
        f"_sync/{name} differs from what _async/{name} generates: "
        "edit _async/ and run python -m tests.unasync"
    )


@NEEDS_RUFF
def test_the_rename_is_whole_words_and_keywords() -> None:
    text = unasync.unasync(
        "async def f(s: AsyncByteStream) -> None:\n"
        "    async with s:\n"
        "        await s.aclose()\n"
        "    AsyncByteStreamFactory = 1\n",
        "example.py",
    )
    assert text.startswith("# GENERATED from _async/example.py")
    assert "def f(s: SyncByteStream) -> None:\n    with s:\n        s.close()\n" in text
    assert "AsyncByteStreamFactory" in text  # a longer name is not a name of the table
