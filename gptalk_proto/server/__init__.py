"""The server room of the sans-IO core."""
