"""Luma's video API (the Luma Agents API, ray-3.2): adapter, catalog and spec."""
