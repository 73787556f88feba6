"""RQ entry points of the API: each takes an id and imports its service inside its body."""

from __future__ import annotations


def webhook_deliver_job(event_id: int) -> None:
    from workspace.api.webhooks import webhook_deliver

    webhook_deliver(event_id=event_id)
