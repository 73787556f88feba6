"""Service-account key files for the Agent Platform tests: a real RSA key, generated once."""

from __future__ import annotations

import functools
import json
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

PROJECT = "reelhouse-test"
CLIENT_EMAIL = f"veo-render@{PROJECT}.iam.gserviceaccount.com"


@functools.cache
def private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def key_file(*, client_email: str = CLIENT_EMAIL, token_uri: str = "", **changes: Any) -> str:
    """A key file as Google's console downloads it (``token_uri`` is Google's unless given)."""
    pem = private_key().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    info = {
        "type": "service_account",
        "project_id": PROJECT,
        "private_key_id": "0123456789abcdef0123456789abcdef01234567",
        "private_key": pem,
        "client_email": client_email,
        "client_id": "100000000000000000001",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri or "https://oauth2.googleapis.com/token",
        "universe_domain": "googleapis.com",
        **changes,
    }
    return json.dumps(info, indent=2)
