"""``python -m workspace.simulator --port 8765``: the simulator without Django."""

from workspace.simulator.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
