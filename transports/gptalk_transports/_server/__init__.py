"""The server side: the driver (accept loop, caps, timeouts) and the reference server."""
