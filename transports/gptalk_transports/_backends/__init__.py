"""The backends: the stream interface (``base``) and its implementations."""
