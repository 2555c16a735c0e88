"""The official OpenAI and Anthropic SDKs, streaming: clients and calls.

Every client is pointed at a loopback URL, ignores the environment's proxies
(``trust_env=False``) and never retries (``max_retries=0``): no call leaves
the machine, and a mismatch shows as the error it is.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import anthropic
import openai

from gptalk_proto.cassette import Cassette
from gptalk_transports import record_through_proxy_in_thread

from . import llm_app

__all__ = ["OTHER_KEY", "SDKS", "record_sdk", "stream_sdk"]

#: What a replayed client sends instead of the recorded key.
OTHER_KEY = "sk-other-0000000000000000000000000000000"

#: One streaming call per SDK, the prompt fixed.
PROMPT = "Say hello in three languages."


def _openai(url: str, key: str, prompt: str) -> list[dict[str, Any]]:
    with openai.OpenAI(
        base_url=url + "/v1",
        api_key=key,
        max_retries=0,
        http_client=openai.DefaultHttpxClient(trust_env=False),
    ) as client:
        stream = client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": prompt}],
            stream=True,
        )
        return [chunk.model_dump() for chunk in stream]


def _anthropic(url: str, key: str, prompt: str) -> list[dict[str, Any]]:
    with anthropic.Anthropic(
        base_url=url,
        api_key=key,
        max_retries=0,
        # The SDK's own HTTP client class (its httpx fork), without proxies.
        http_client=anthropic.DefaultHttpxClient(trust_env=False),
    ) as client:
        stream = client.messages.create(
            model="claude-3-5-haiku-latest",
            max_tokens=64,
            messages=[{"role": "user", "content": prompt}],
            stream=True,
        )
        return [event.model_dump() for event in stream]


#: SDK name -> its streaming call (base URL, API key, prompt -> the parsed chunks).
SDKS: dict[str, Callable[[str, str, str], list[dict[str, Any]]]] = {
    "openai": _openai,
    "anthropic": _anthropic,
}


def stream_sdk(
    sdk: str, url: str, key: str = llm_app.API_KEY, prompt: str = PROMPT
) -> list[dict[str, Any]]:
    """The SDK's streaming call against ``url``; its parsed chunks."""
    return SDKS[sdk](url, key, prompt)


def record_sdk(sdk: str) -> tuple[Cassette, list[dict[str, Any]]]:
    """The SDK's call through the recording proxy (profile ``generic``) to the
    test server, which is stopped when this returns."""
    with (
        llm_app.run_in_thread() as upstream,
        record_through_proxy_in_thread(upstream, trust_env=False, profile="generic") as run,
    ):
        chunks = stream_sdk(sdk, run.url)
    assert run.cassette is not None
    return run.cassette, chunks


if __name__ == "__main__":
    # python -m tests.sdk_cases: record the shipped SDK cassettes again.
    from gptalk_transports._cassettes import save_cassette

    folder = Path(__file__).resolve().parent.parent / "cassettes"
    for name in SDKS:
        cassette, _ = record_sdk(name)
        save_cassette(folder / f"{name}-stream.json", cassette)
        print(f"recorded {folder / f'{name}-stream.json'}")
