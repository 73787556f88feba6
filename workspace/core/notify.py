"""Telling the organisation's admins about something that needs a person."""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail

from workspace.core.models import NOTIFICATION_MESSAGE_MAX_LENGTH, Notification

logger = logging.getLogger(__name__)


def admins_notify(*, subject: str, message: str, url: str = "") -> int:
    """Tell every active staff member in the app (the bell in the page header) and by email to
    those who have an address; returns how many were emailed.

    Never include a key or secret in ``message``: it goes to mailboxes and logs.
    """
    logger.warning("admin alert: %s: %s", subject, message)
    staff = get_user_model().objects.filter(is_active=True, is_staff=True)
    Notification.objects.bulk_create(
        Notification(
            user=admin,
            level=Notification.Level.WARNING,
            title=subject[:200],
            message=message[:NOTIFICATION_MESSAGE_MAX_LENGTH],
            url=url[:300],
        )
        for admin in staff
    )
    recipients = [email for email in staff.values_list("email", flat=True) if email]
    if not recipients:
        return 0
    try:
        send_mail(
            f"[Reelhouse] {subject}",
            message,
            settings.DEFAULT_FROM_EMAIL,
            recipients,
            fail_silently=False,
        )
    except Exception:  # a broken mail server must not break the worker that noticed the problem
        logger.exception("could not email the admins about: %s", subject)
        return 0
    return len(recipients)


def users_notify(*, user_ids: list[int], title: str, message: str = "", url: str = "") -> int:
    """Put a notification in each given user's bell (the page header); returns how many.

    In-app only: mentions and the like are frequent and not urgent, unlike admins' alerts.
    """
    Notification.objects.bulk_create(
        Notification(
            user_id=user_id,
            level=Notification.Level.INFO,
            title=title[:200],
            message=message[:NOTIFICATION_MESSAGE_MAX_LENGTH],
            url=url[:300],
        )
        for user_id in dict.fromkeys(user_ids)  # each person once, in the given order
    )
    return len(dict.fromkeys(user_ids))
