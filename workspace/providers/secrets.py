"""Provider keys stored in the database are encrypted at rest (Fernet, from ``cryptography``).

The encryption key comes from ``REELHOUSE_KEY_ENCRYPTION_KEY`` when set, else it is derived from
``SECRET_KEY``; rotating whichever is in use means re-entering the stored provider keys. Keys
are never rendered: pages show only ``mask()``.
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings


class KeyUnreadable(Exception):
    pass


def _fernet() -> Fernet:
    material = getattr(settings, "REELHOUSE_KEY_ENCRYPTION_KEY", None) or settings.SECRET_KEY
    digest = hashlib.sha256(f"reelhouse-provider-keys:{material}".encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def encrypt(plaintext: str) -> str:
    return _fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise KeyUnreadable(
            "The stored provider key cannot be decrypted (SECRET_KEY or "
            "REELHOUSE_KEY_ENCRYPTION_KEY changed); enter the key again in the admin."
        ) from None


def mask(key: str) -> str:
    key = key.strip()
    if len(key) < 12:
        return "••••"
    return f"{key[:3]}…{key[-4:]}"
