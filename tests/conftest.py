"""Shared fixtures: a seeded service, fresh credentials, fingerprints."""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable

import pytest

import gptalk_proto as g

NOW = 1_700_000_000.0


@pytest.fixture
def service() -> g.Service:
    """A reference service with seeded entropy (deterministic tokens)."""
    return g.Service(entropy=random.Random(1234).randbytes)


@pytest.fixture
def credentials() -> g.Credentials:
    return g.Credentials()


@pytest.fixture
def fingerprint() -> Callable[[], str]:
    """A factory of distinct valid fingerprints."""
    counter = itertools.count()
    return lambda: f"{next(counter):032x}"


@pytest.fixture
def make_chat(credentials: g.Credentials, fingerprint: Callable[[], str]) -> Callable[..., g.Chat]:
    """Build a Chat sharing the fixture's credentials."""

    def make(prompt: object = "Hello, how are you?", **kwargs: object) -> g.Chat:
        kwargs.setdefault("credentials", credentials)
        kwargs.setdefault("fingerprint", fingerprint())
        return g.Chat(prompt, **kwargs)  # type: ignore[arg-type]

    return make
