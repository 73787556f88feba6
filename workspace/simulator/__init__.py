"""Reelhouse's provider simulator: a real HTTP server that speaks video-provider protocols.

It is the app's default provider and what every test and benchmark runs against. Importing this
package never imports Django (``apps.py`` is only loaded by Django itself).
"""

from workspace.simulator.core import SimulatorConfig
from workspace.simulator.server import SimulatorServer

__all__ = ["SimulatorConfig", "SimulatorServer"]
