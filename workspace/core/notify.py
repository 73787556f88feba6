"""Telling the organisation's admins about something that needs a person."""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail

logger = logging.getLogger(__name__)


def admins_notify(*, subject: str, message: str) -> int:
    """Email every active staff member who has an address; returns how many were written to.

    Never include a key or secret in ``message``: it goes to mailboxes and logs.
    """
    logger.warning("admin alert: %s: %s", subject, message)
    recipients = list(
        get_user_model()
        .objects.filter(is_active=True, is_staff=True)
        .exclude(email="")
        .values_list("email", flat=True)
    )
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
