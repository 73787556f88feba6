"""The short restore drill (bench/restore_drill.py with small numbers): a hot backup taken while
generations were queued, being sent, rendering and finished at the provider, restored into a
fresh database, media store and empty Redis, must finish every one of them, adopt the jobs the
provider already had (nothing paid twice, the ledger equal to the bill), fetch a lost file again
and mark one the provider no longer has. The full drill and its figures: docs/benchmarks.md."""

from collections.abc import Callable

import pytest

from tests.bench.conftest import BenchRun


@pytest.mark.drill
def test_the_short_restore_drill_meets_every_target(run_bench: Callable[..., BenchRun]) -> None:
    result, report = run_bench(
        "restore_drill.py", "--generations", "12", "--stored-first", "2", "--time-scale", "20",
        "--render-seconds", "40", "--creates-per-minute", "4",
    )
    # The drill caught what it is about: work in every state at the dump, and a create the
    # lost system sent after it.
    assert {"queued", "submitting", "in_progress, finished at the provider"} <= set(
        report["just_before_the_dump"]
    ), report
    assert report["sent_by_the_lost_system_after_the_dump"] >= 1, report
    assert report["adopted_after_dump"] == report["sent_by_the_lost_system_after_the_dump"]
    assert report["lost"] == 0, report
    assert report["stuck_after_run"] == 0, report
    assert report["duplicate_paid_creations"] == 0, report
    assert report["ledger_minus_simulator_cents"] == 0, report
    assert report["ledger_open_reservations_cents"] == 0, report
    assert report["missing_file_fetched_again"] and report["missing_file_marked_lost"], report
    assert report["redis_keys_before_restore"] == 0, report
    assert report["redis_mark_rebuilt_by_scheduler"], report
    assert result.returncode == 0, result.stdout[-3000:]
