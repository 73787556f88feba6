"""Google service-account credentials for the Agent Platform: a signed JWT exchanged for a
short-lived OAuth access token (RFC 7523, Google's "OAuth 2.0 for server to server").

The organisation key of an Agent Platform channel is the service account's JSON key file. The
adapter signs an assertion with its ``private_key`` (RS256) and posts it to the token endpoint
the channel is configured for; the ``token_uri`` written in the JSON is never followed (a key
file is pasted by a person and could name any host; the assertion is a credential).
Anything that is not a JSON object is an express-mode API key (``x-goog-api-key``).

Access tokens are kept per process until shortly before they expire, keyed by the token
endpoint, the service account and its private key, so polls in one process share one token.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from workspace.providers.errors import ErrorClass, ProviderError

# The scope every Agent Platform call needs (google-genai asks for the same).
SCOPE = "https://www.googleapis.com/auth/cloud-platform"
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"  # noqa: S105 (an address)
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
# Google accepts assertions valid for at most an hour.
ASSERTION_SECONDS = 3600
# A token this close to its expiry is not used again (a poll must not race it).
REFRESH_MARGIN_SECONDS = 300


@dataclass(frozen=True)
class ServiceAccount:
    client_email: str
    private_key_id: str
    private_key: rsa.RSAPrivateKey
    project_id: str
    # SHA-256 of the private key: a cached token is reused only by the key that obtained it.
    fingerprint: str


def _refused(problem: str) -> ProviderError:
    return ProviderError(ErrorClass.AUTH, f"The channel's Google service-account key {problem}.")


def is_service_account_json(key: str) -> bool:
    return key.lstrip().startswith("{")


def parse_service_account(key: str) -> ServiceAccount:
    """The fields of a service-account key file; ``ProviderError(AUTH)`` names what is wrong
    (never the key's content)."""
    try:
        info = json.loads(key)
    except ValueError:
        raise _refused("is not valid JSON") from None
    if not isinstance(info, dict) or info.get("type") != "service_account":
        raise _refused('is not a service-account key file ("type": "service_account")')
    fields = {}
    for name in ("client_email", "private_key_id", "private_key", "project_id"):
        value = info.get(name)
        if not isinstance(value, str) or not value.strip():
            raise _refused(f"has no {name}")
        fields[name] = value.strip()
    try:
        private_key = serialization.load_pem_private_key(
            fields["private_key"].encode(), password=None
        )
    except (ValueError, TypeError):
        raise _refused("has a private_key that is not an unencrypted PEM key") from None
    if not isinstance(private_key, rsa.RSAPrivateKey):
        raise _refused("has a private_key that is not an RSA key")
    return ServiceAccount(
        client_email=fields["client_email"],
        private_key_id=fields["private_key_id"],
        private_key=private_key,
        project_id=fields["project_id"],
        fingerprint=hashlib.sha256(fields["private_key"].encode()).hexdigest(),
    )


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def signed_assertion(account: ServiceAccount, *, now: float) -> str:
    """The RS256 JWT Google's token endpoint exchanges for an access token. Its audience is
    always Google's endpoint, as google-auth signs it, wherever the assertion is posted."""
    header = {"alg": "RS256", "typ": "JWT", "kid": account.private_key_id}
    issued = int(now)
    claims = {
        "iss": account.client_email,
        "scope": SCOPE,
        "aud": GOOGLE_TOKEN_URI,
        "iat": issued,
        "exp": issued + ASSERTION_SECONDS,
    }
    signing_input = ".".join(
        _b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)
    )
    signature = account.private_key.sign(
        signing_input.encode(), padding.PKCS1v15(), hashes.SHA256()
    )
    return f"{signing_input}.{_b64url(signature)}"


class TokenCache:
    """Access tokens by (token endpoint, service account, private key fingerprint), per
    process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens: dict[tuple[str, str, str], tuple[str, float]] = {}

    def get(self, key: tuple[str, str, str], *, now: float) -> str | None:
        with self._lock:
            entry = self._tokens.get(key)
        if entry is None or entry[1] - REFRESH_MARGIN_SECONDS <= now:
            return None
        return entry[0]

    def put(self, key: tuple[str, str, str], token: str, *, expires_at: float) -> None:
        with self._lock:
            self._tokens[key] = (token, expires_at)

    def forget(self, key: tuple[str, str, str], token: str | None = None) -> None:
        """Drop the cached token (only if it is still ``token``: another thread may have
        refreshed it already)."""
        with self._lock:
            entry = self._tokens.get(key)
            if entry is not None and (token is None or entry[0] == token):
                del self._tokens[key]

    def clear(self) -> None:
        with self._lock:
            self._tokens.clear()


TOKENS = TokenCache()


def clock() -> float:
    return time.time()
