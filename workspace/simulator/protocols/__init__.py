"""One module per simulated provider API; each subclasses ``core.SimulatedAPI``.

The server mounts the ones the provider registry names (``ProviderSpec.simulator``).
"""
