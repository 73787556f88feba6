from datetime import timedelta

from workspace.core.rq import enqueue_overdue_scheduled, get_queue


def test_overdue_scheduled_jobs_are_enqueued_without_rqs_scheduler(redis_conn) -> None:  # type: ignore[no-untyped-def]
    queue = get_queue()
    overdue = queue.enqueue_in(timedelta(seconds=-60), "time.sleep", 0)
    future = queue.enqueue_in(timedelta(seconds=600), "time.sleep", 0)
    assert enqueue_overdue_scheduled() == 1
    assert queue.get_job_ids() == [overdue.id]
    assert future.id in queue.scheduled_job_registry.get_job_ids()
