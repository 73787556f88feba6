"""Which environment variables a channel may take a key (or webhook secret) from.

A channel sends its key to the address an admin sets, so the name of the variable holding it
must not be able to pick any other secret out of the process environment: ``SECRET_KEY``,
``DATABASE_URL`` or ``REELHOUSE_KEY_ENCRYPTION_KEY`` sent to a host of the editor's choice by
*Check the key* would hand over the whole installation. The rule, documented in the README:

* upper-case letters, digits and underscores, starting with a letter, 2 to 80 characters;
* ending in ``_KEY``, ``_SECRET`` or ``_TOKEN`` (which covers ``_API_KEY`` and ``_API_SECRET``):
  the way provider SDKs name their keys (``OPENAI_API_KEY``, ``RUNWAYML_API_SECRET``,
  ``FAL_KEY``, ``GEMINI_API_KEY``, ``OPENAI_WEBHOOK_SECRET``);
* not the name of any Django or Reelhouse setting (``SECRET_KEY``, ``EMAIL_HOST_PASSWORD``, … —
  whatever ``django.conf.settings`` has), and not starting with a prefix that Reelhouse,
  Django's commands or the host's own credentials use (``DENIED_PREFIXES``).
"""

from __future__ import annotations

import re

from django.conf import settings
from django.core.exceptions import ValidationError

KEY_ENV_PATTERN = re.compile(r"[A-Z][A-Z0-9_]{1,79}")
KEY_ENV_SUFFIXES = ("_KEY", "_SECRET", "_TOKEN")
# Reelhouse's own variables, Django's (createsuperuser reads DJANGO_SUPERUSER_PASSWORD), the
# database, Redis and mail server, and the host's cloud credentials (AWS_SECRET_ACCESS_KEY,
# AZURE_CLIENT_SECRET): none of them is ever a video provider's key.
DENIED_PREFIXES = ("REELHOUSE_", "DJANGO_", "DATABASE_", "REDIS_", "EMAIL_", "AWS_", "AZURE_")
# Named explicitly too, in case a future settings module stops defining one of them.
DENIED_NAMES = frozenset({"SECRET_KEY", "DATABASE_URL", "REDIS_URL"})


def key_env_problem(name: str) -> str | None:
    """Why ``name`` may not hold a channel's key, or None when it may."""
    if not KEY_ENV_PATTERN.fullmatch(name):
        return (
            f"“{name}” is not a valid key variable name: use upper-case letters, digits and "
            "underscores, starting with a letter (at most 80 characters)."
        )
    if name in DENIED_NAMES or name.startswith(DENIED_PREFIXES) or hasattr(settings, name):
        return (
            f"{name} is one of Reelhouse's own settings (or the server's), not a provider key: "
            "a channel may never send it anywhere."
        )
    if not name.endswith(KEY_ENV_SUFFIXES):
        return (
            f"“{name}” does not look like a key variable: its name must end in _KEY, _SECRET "
            "or _TOKEN (e.g. OPENAI_API_KEY, RUNWAYML_API_SECRET)."
        )
    return None


def validate_key_env_name(value: str) -> None:
    problem = key_env_problem(value)
    if problem is not None:
        raise ValidationError(problem, code="key_env_name")
