"""docs/production.md lists every environment variable Reelhouse reads, and the metrics page
every metric /metrics serves: the lists are checked against the code, not kept by hand."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from workspace.ops.metrics import REGISTRY
from workspace.providers.registry import provider_env_names

ROOT = Path(__file__).resolve().parents[2]
GUIDE = (ROOT / "docs" / "production.md").read_text()
OPERATIONS = (ROOT / "docs" / "operations.md").read_text()


def variables_read() -> set[str]:
    names: set[str] = set()
    settings_source = (ROOT / "workspace" / "settings.py").read_text()
    names |= set(re.findall(r"\benv_\w+\(\s*\"([A-Z][A-Z0-9_]+)\"", settings_source))
    # Everything else that reads os.environ by a literal name (the run command's first admin).
    for path in (ROOT / "workspace").rglob("*.py"):
        if "simulator" in path.parts:
            continue  # the simulator's own flags are documented in docs/simulator.md
        text = path.read_text()
        names |= set(re.findall(r"os\.environ\.get\(\s*\"([A-Z][A-Z0-9_]+)\"", text))
    # The Procfile's ${NAME:-default} substitutions.
    procfile = [
        line for line in (ROOT / "Procfile").read_text().splitlines() if not line.startswith("#")
    ]
    names |= set(re.findall(r"\$\{([A-Z][A-Z0-9_]+)", "\n".join(procfile)))
    names |= set(provider_env_names())
    return names


def test_the_guide_lists_every_variable_read() -> None:
    found = variables_read()
    # The check is only worth something if it sees the real settings.
    assert {"SECRET_KEY", "REELHOUSE_METRICS_TOKEN", "WEB_CONCURRENCY", "FAL_KEY"} <= found
    missing = sorted(name for name in found if f"`{name}`" not in GUIDE)
    assert not missing, f"docs/production.md does not list: {missing}"


@pytest.mark.django_db
def test_the_operations_page_lists_every_metric(channel) -> None:  # type: ignore[no-untyped-def]
    served = {metric.name for metric in REGISTRY.collect()}
    assert "reelhouse_queue_depth" in served
    missing = sorted(name for name in served if f"`{name}`" not in OPERATIONS
                     and f"`{name}_total`" not in OPERATIONS)
    assert not missing, f"docs/operations.md does not list: {missing}"
