"""The async clients and drivers, written once: ``_sync`` is generated from them."""
