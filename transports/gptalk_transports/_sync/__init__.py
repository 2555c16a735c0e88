"""The blocking clients and drivers."""
