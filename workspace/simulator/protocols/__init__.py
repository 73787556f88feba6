"""One module per simulated provider protocol; each subclasses ``core.Protocol``."""
