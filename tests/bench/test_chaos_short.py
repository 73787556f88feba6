"""The short chaos run (bench/chaos.py with small numbers): crashes, a Redis restart and provider
faults must lose nothing, pay nothing twice, leave nothing stuck and keep the ledger equal to
what the provider billed. The full run and its figures are in docs/benchmarks.md."""

from collections.abc import Callable

import pytest

from tests.bench.conftest import BenchRun


@pytest.mark.chaos
def test_the_short_chaos_run_meets_every_target(run_bench: Callable[..., BenchRun]) -> None:
    result, report = run_bench(
        "chaos.py", "--generations", "40", "--fault-seconds", "30", "--settle-seconds", "150"
    )
    assert report["worker_kills"] > 0
    assert report["redis_restarted"]
    assert report["lost"] == 0, report
    assert report["duplicate_paid_creations"] == 0, report
    assert report["stuck_after_run"] == 0, report
    assert report["ledger_minus_simulator_cents"] == 0, report
    assert report["ledger_open_reservations_cents"] == 0, report
    assert result.returncode == 0, result.stdout[-3000:]
