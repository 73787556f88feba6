"""The one classification of provider failures that every caller relies on.

Adapters turn a provider's answer (or the lack of one) into a ``ProviderError`` exactly once;
jobs and services decide what to do from its class and never look at status codes themselves.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorClass(StrEnum):
    RATE_LIMITED = "rate_limited"
    QUOTA_EXHAUSTED = "quota_exhausted"
    OVERLOADED = "overloaded"
    NETWORK = "network"
    AUTH = "auth"
    INVALID_REQUEST = "invalid_request"
    MODERATION = "moderation"
    PROVIDER_FAILED = "provider_failed"
    EXPIRED = "expired"
    NOT_FOUND = "not_found"
    AMBIGUOUS_CREATE = "ambiguous_create"


TRANSIENT = {ErrorClass.RATE_LIMITED, ErrorClass.OVERLOADED, ErrorClass.NETWORK}

# What a member reads; the provider's own words are shown beside it where they help.
MEMBER_MESSAGES: dict[ErrorClass, str] = {
    ErrorClass.RATE_LIMITED: "The provider asked us to slow down; your video is waiting its turn.",
    ErrorClass.QUOTA_EXHAUSTED: (
        "The organisation's provider account has run out of credit or hit its spend limit. "
        "An admin has to top it up."
    ),
    ErrorClass.OVERLOADED: "The provider is overloaded right now; we retry automatically.",
    ErrorClass.NETWORK: "We could not reach the provider; we retry automatically.",
    ErrorClass.AUTH: "The provider refused the organisation's API key. An admin has to fix it.",
    ErrorClass.INVALID_REQUEST: "The provider rejected the request as invalid.",
    ErrorClass.MODERATION: "The provider's safety system blocked this prompt or reference.",
    ErrorClass.PROVIDER_FAILED: "The provider could not generate this video.",
    ErrorClass.EXPIRED: "The provider deleted the finished files before we could fetch them.",
    ErrorClass.NOT_FOUND: "The provider no longer knows this job.",
    ErrorClass.AMBIGUOUS_CREATE: (
        "We could not tell whether the provider accepted this request. It was not re-sent, so "
        "you are never charged twice."
    ),
}


class CreateOutcome(StrEnum):
    """What a failed create call tells us about whether a (paid) job now exists."""

    NOT_CREATED = "not_created"
    AMBIGUOUS = "ambiguous"


class ProviderError(Exception):
    def __init__(
        self,
        error_class: ErrorClass,
        message: str,
        *,
        http_status: int | None = None,
        code: str | None = None,
        retry_after: float | None = None,
        create_outcome: CreateOutcome | None = None,
    ) -> None:
        super().__init__(message)
        self.error_class = error_class
        self.message = message
        self.http_status = http_status
        self.code = code
        self.retry_after = retry_after
        self.create_outcome = create_outcome

    @property
    def transient(self) -> bool:
        return self.error_class in TRANSIENT

    @property
    def member_message(self) -> str:
        return MEMBER_MESSAGES[self.error_class]

    def __repr__(self) -> str:
        return (
            f"ProviderError({self.error_class.value}, status={self.http_status}, "
            f"code={self.code!r}, message={self.message!r})"
        )
