"""The sse room of the sans-IO core."""
