"""The pytest plugin's helpers (``gptalk_transports.pytest_plugin`` is the entry point)."""
