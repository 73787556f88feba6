"""Luma's video API (the Luma Agents API, ray-3.2): adapter, catalog, spec and simulated API."""
