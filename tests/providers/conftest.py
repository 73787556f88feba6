"""Fixtures for tests that run real loopback stand-ins for providers (see stand_in.py)."""

from .stand_in import outside_connects, stand_ins  # noqa: F401 - pytest finds fixtures here
