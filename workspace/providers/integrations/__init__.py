"""One folder per provider: its adapter, its catalog and its spec (``spec.SPEC``).

``workspace/providers/registry.py`` lists the folders; README *Providers* says how to add one.
"""
