"""The cassette room of the sans-IO core."""
