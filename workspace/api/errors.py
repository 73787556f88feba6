"""Errors in OpenAI's envelope: ``{"error": {"message", "type", "param", "code"}}``.

The official SDKs map the status to their own exception classes (401 AuthenticationError, 404
NotFoundError, 429 RateLimitError…) and show ``message``; scripts branch on ``param``/``code``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "permission_error",
    404: "invalid_request_error",
    405: "invalid_request_error",
    429: "rate_limit_exceeded",
}


@dataclass
class ApiError(Exception):
    status: int
    message: str
    param: str | None = None
    code: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def body(self) -> dict[str, dict[str, str | None]]:
        return {
            "error": {
                "message": self.message,
                "type": _TYPES.get(self.status, "server_error"),
                "param": self.param,
                "code": self.code,
            }
        }


def not_found(video_id: str, param: str = "video_id") -> ApiError:
    # The same answer whether the video does not exist or belongs to someone else.
    return ApiError(404, f"No video found with id '{video_id}'.", param, "video_not_found")
