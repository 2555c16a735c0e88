"""Benchmarks: gptalk-proto against other Python SSE and HTTP stacks, side by side.

Run ``python -m tests.bench`` (peers from the ``bench`` extra).  Every figure
is a median of several rounds measured in this one process run, and targets
are ratios to peers measured in the same run, never absolute times.
"""
