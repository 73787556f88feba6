"""Running a benchmark's short run from a test: the real script, as a separate process."""

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]

BenchRun = tuple[subprocess.CompletedProcess[str], dict[str, Any]]


@pytest.fixture
def run_bench(tmp_path: Path) -> Callable[..., BenchRun]:
    """``run_bench("chaos.py", "--generations", "40", …)``: runs bench/<script> with those options
    and ``--json``, and returns the finished process and the report it wrote (the test fails with
    the bench's stderr when it wrote none). The exit status is the caller's to check, after the
    report's figures, which say more about a failure."""

    def run(script: str, *options: str) -> BenchRun:
        report_file = tmp_path / "report.json"
        result = subprocess.run(
            [sys.executable, str(ROOT / "bench" / script), *options, "--json", str(report_file)],
            cwd=ROOT / "bench",
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert report_file.exists(), result.stderr[-3000:]
        return result, json.loads(report_file.read_text())

    return run
