import os
from datetime import timedelta

import pytest
from django.conf import settings

from workspace.core.rq import InProcessWorker, enqueue_overdue_scheduled, get_queue


def test_overdue_scheduled_jobs_are_enqueued_without_rqs_scheduler(redis_conn) -> None:  # type: ignore[no-untyped-def]
    queue = get_queue()
    overdue = queue.enqueue_in(timedelta(seconds=-60), "time.sleep", 0)
    future = queue.enqueue_in(timedelta(seconds=600), "time.sleep", 0)
    assert enqueue_overdue_scheduled() == 1
    assert queue.get_job_ids() == [overdue.id]
    assert future.id in queue.scheduled_job_registry.get_job_ids()


def report_process_and_database() -> tuple[int, int]:
    """A job: which process ran it, and which database backend served it."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_backend_pid()" if connection.vendor == "postgresql" else "SELECT 1"
        )
        return os.getpid(), cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_the_in_process_worker_runs_jobs_itself_and_keeps_its_database_connection(
    redis_conn,
) -> None:  # type: ignore[no-untyped-def]
    import django_rq

    queue = get_queue()
    first = queue.enqueue(report_process_and_database)
    second = queue.enqueue(report_process_and_database)
    worker = django_rq.get_worker("default", worker_class=settings.RQ_WORKER_CLASSES["in-process"])
    assert isinstance(worker, InProcessWorker)
    worker.work(burst=True)
    first_pid, first_backend = first.latest_result().return_value
    second_pid, second_backend = second.latest_result().return_value
    # No work horse: the job ran here, and the second job reused the first one's connection.
    assert first_pid == second_pid == os.getpid()
    assert first_backend == second_backend


@pytest.mark.django_db(transaction=True)
def test_a_broken_database_connection_is_replaced_before_the_next_job(redis_conn) -> None:  # type: ignore[no-untyped-def]
    import django_rq
    from django.db import OperationalError, connection

    if connection.vendor != "postgresql":
        pytest.skip("needs a database server whose connection can be cut")
    queue = get_queue()
    first = queue.enqueue(report_process_and_database)
    worker = django_rq.get_worker("default", worker_class=settings.RQ_WORKER_CLASSES["in-process"])
    worker.work(burst=True)
    _, first_backend = first.latest_result().return_value
    # The server drops the worker's connection between jobs (a restart, say).
    with pytest.raises(OperationalError), connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(pg_backend_pid())")
    second = queue.enqueue(report_process_and_database)
    worker.work(burst=True)
    # The next job got a working connection of its own instead of failing on the dead one.
    assert second.get_status() == "finished"
    _, second_backend = second.latest_result().return_value
    assert second_backend != first_backend
