"""Where the plugin keeps a test's outcome: its fixtures decide at teardown,
by whether the test passed, to check the unplayed steps (a failed test has
already said what went wrong)."""

from __future__ import annotations

import pytest

__all__ = ["OUTCOME"]

#: The call phase's report, stashed on the test item by the plugin's hook.
OUTCOME = pytest.StashKey[pytest.TestReport]()
