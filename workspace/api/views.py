"""The API tokens page, and ``/v1/videos``: the OpenAI Videos contract with Bearer tokens.

The API never looks at the session: a signed-in browser without a token gets a 401, and a token
is not a cookie a page could be tricked into sending, so CSRF does not apply to it.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import logging
import re
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from workspace.accounts.throttle import client_address
from workspace.api.errors import ApiError, not_found
from workspace.api.forms import TokenForm, WebhookForm
from workspace.api.models import ApiToken
from workspace.api.openapi import openapi_document
from workspace.api.ratelimit import RateDecision, retry_after_header, token_rate_check
from workspace.api.services import (
    IssuedToken,
    token_authenticate,
    token_create,
    token_failure_reason,
    token_revoke,
    tokens_for_owner,
)
from workspace.api.videos import (
    LIST_DEFAULT_LIMIT,
    LIST_MAX_LIMIT,
    PROJECT_HEADER,
    VARIANTS,
    allowance_for,
    request_project,
    video_change,
    video_create,
    video_delete,
    video_get,
    video_payload,
    videos_list,
)
from workspace.api.webhooks import token_webhook_set, webhook_log
from workspace.core.files import file_response
from workspace.generations.images import (
    MAX_IMAGE_BYTES,
    CheckedImage,
    ImageRefused,
    image_check,
)
from workspace.generations.models import Operation
from workspace.projects.models import Project

logger = logging.getLogger(__name__)

# --- The member's tokens page -------------------------------------------------------------------


def _tokens_page(
    request: HttpRequest,
    *,
    form: TokenForm,
    status: int = 200,
    issued: IssuedToken | None = None,
    webhook_secret: tuple[ApiToken, str] | None = None,
    bound_webhook_form: tuple[int, WebhookForm] | None = None,
) -> HttpResponse:
    user = request.user
    owned = tokens_for_owner(owner=user)  # type: ignore[arg-type]
    rows = []
    for token in owned:
        hook_form = (
            bound_webhook_form[1]
            if bound_webhook_form and bound_webhook_form[0] == token.pk
            else WebhookForm(initial={"url": token.webhook_url}, token_id=token.pk)
        )
        rows.append({"token": token, "webhook_form": hook_form, "log": webhook_log(token=token)})
    return render(
        request,
        "api/tokens.html",
        {
            "form": form,
            "issued": issued,
            "webhook_secret": webhook_secret,
            "rows": rows,
            "tokens": owned,
            "projects": Project.objects.filter(memberships__user_id=user.pk or 0).order_by("name"),
            "base_url": request.build_absolute_uri("/v1"),
            "requests_per_minute": settings.REELHOUSE_API_REQUESTS_PER_MINUTE,
            "request_burst": settings.REELHOUSE_API_REQUEST_BURST,
            "webhook_timeout": f"{settings.REELHOUSE_WEBHOOK_TIMEOUT:g}",
        },
        status=status,
    )


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def tokens(request: HttpRequest) -> HttpResponse:
    user = request.user
    form = TokenForm(request.POST or None, owner=user)  # type: ignore[arg-type]
    if request.method != "POST":
        return _tokens_page(request, form=form)
    if not form.is_valid():
        return _tokens_page(request, form=form, status=400)
    after = form.expires_after()
    issued = token_create(
        owner=user,  # type: ignore[arg-type]
        name=form.cleaned_data["name"],
        project=form.cleaned_data["project"],
        can_write=form.cleaned_data["access"] == "write",
        expires_at=timezone.now() + after if after else None,
    )
    # The secret is on this answer only; nothing stores it to show it again.
    return _tokens_page(request, form=TokenForm(owner=user), issued=issued)  # type: ignore[arg-type]


@login_required
@require_POST
def token_webhook(request: HttpRequest, token_id: int) -> HttpResponse:
    token = ApiToken.objects.filter(pk=token_id, owner_id=request.user.pk or 0).first()
    if token is None or token.revoked_at is not None:
        raise Http404("No such token.")
    form = WebhookForm(request.POST, token_id=token.pk)
    blank = TokenForm(owner=request.user)  # type: ignore[arg-type]
    if form.is_valid():
        try:
            secret = token_webhook_set(
                token=token,
                actor=request.user,  # type: ignore[arg-type]
                url=form.cleaned_data["url"],
                new_secret=form.cleaned_data["new_secret"],
            )
        except ValidationError as refusal:
            form.add_error("url", refusal)
        else:
            if secret is not None:
                # Shown on this answer only, like the token itself.
                return _tokens_page(request, form=blank, webhook_secret=(token, secret))
            if token.webhook_url:
                messages.success(request, f"Webhooks of “{token.name}” go to {token.webhook_url}.")
            else:
                messages.success(request, f"“{token.name}” sends no webhooks any more.")
            return redirect("api:tokens")
    return _tokens_page(request, form=blank, status=400, bound_webhook_form=(token.pk, form))


@login_required
@require_POST
def token_revoke_view(request: HttpRequest, token_id: int) -> HttpResponse:
    token = ApiToken.objects.filter(pk=token_id, owner_id=request.user.pk or 0).first()
    if token is None:
        raise Http404("No such token.")
    if token_revoke(token=token, actor=request.user):  # type: ignore[arg-type]
        messages.success(request, f"Revoked “{token.name}”: scripts using it now get a 401.")
    return redirect("api:tokens")


@require_safe
def openapi_json(request: HttpRequest) -> JsonResponse:
    """The API's OpenAPI document, public like OpenAI's, its server this site's /v1."""
    return JsonResponse(openapi_document(base_url=request.build_absolute_uri("/v1")))


# --- /v1: authentication, errors, headers -------------------------------------------------------

ApiView = Callable[..., HttpResponseBase | dict[str, Any]]


def _error_response(error: ApiError) -> JsonResponse:
    response = JsonResponse(error.body(), status=error.status)
    for name, value in error.headers.items():
        response[name] = value
    return response


def _address(request: HttpRequest) -> str | None:
    address = client_address(request)
    try:
        return str(ipaddress.ip_address(address)) if address else None
    except ValueError:
        return None


def _authenticate(request: HttpRequest) -> ApiToken:
    header = request.headers.get("Authorization", "")
    scheme, _, secret = header.partition(" ")
    secret = secret.strip()
    if scheme.lower() != "bearer" or not secret:
        raise ApiError(
            401,
            "You didn't provide an API key. Send it as 'Authorization: Bearer rh_…' "
            "(create one on your API tokens page in Reelhouse).",
            code="missing_api_key",
            headers={"WWW-Authenticate": "Bearer"},
        )
    token = token_authenticate(secret=secret, address=_address(request))
    if token is None:
        raise ApiError(
            401,
            token_failure_reason(secret=secret),
            code="invalid_api_key",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    return token


def _too_many_requests(rate: RateDecision) -> ApiError:
    wait = retry_after_header(rate.retry_after)
    return ApiError(
        429,
        f"Too many requests with this API key: it may make {rate.limit} a minute (after a "
        f"first burst); try again in {wait} s. Videos you created are not affected.",
        code="rate_limit_exceeded",
        headers={"Retry-After": wait},
    )


def api_endpoint(*methods: str) -> Callable[[ApiView], Callable[..., HttpResponseBase]]:
    """Token authentication, the project in scope, OpenAI's error envelope and the caller's
    remaining allowance in ``x-ratelimit-*`` headers, around a view answering a dict or a
    response."""

    def decorate(view: ApiView) -> Callable[..., HttpResponseBase]:
        @csrf_exempt
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            token: ApiToken | None = None
            project: Project | None = None
            rate = None
            try:
                if request.method not in methods:
                    raise ApiError(
                        405,
                        f"{request.method} is not allowed here; use {' or '.join(methods)}.",
                        headers={"Allow": ", ".join(methods)},
                    )
                token = _authenticate(request)
                rate = token_rate_check(token_id=token.pk)
                if rate is not None and not rate.allowed:
                    raise _too_many_requests(rate)
                project = request_project(token=token, header=request.headers.get(PROJECT_HEADER))
                answer = view(request, token, project, *args, **kwargs)
                response = answer if isinstance(answer, HttpResponseBase) else JsonResponse(answer)
            except ApiError as error:
                response = _error_response(error)
            if rate is not None:
                for name, value in rate.headers().items():
                    response[name] = value
            if token is not None and (rate is None or rate.allowed):
                # A refused flood costs one Redis call per request, not the allowance's queries.
                for name, value in allowance_for(token=token, project=project).headers().items():
                    response[name] = value
            return response

        return wrapper

    return decorate


# --- /v1/videos ---------------------------------------------------------------------------------


def _body(request: HttpRequest) -> dict[str, Any]:
    """The request's parameters, from JSON or a form (multipart, as the SDK sends files)."""
    if request.content_type == "application/json":
        try:
            raw = request.body
        except RequestDataTooBig:
            raise ApiError(
                400,
                f"The JSON body is larger than {_body_limit()}: send a large input_reference "
                "as a multipart file upload (files are not bound by this limit).",
            ) from None
        try:
            data = json.loads(raw or b"{}")
        except (ValueError, RecursionError):
            raise ApiError(400, "We could not parse the JSON body of your request.") from None
        if not isinstance(data, dict):
            raise ApiError(400, "The JSON body must be an object of parameters.")
        return data
    if request.content_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
        try:
            fields: dict[str, Any] = {key: request.POST.get(key) for key in request.POST}
            fields.update({key: request.FILES[key] for key in request.FILES})
        except (MultiPartParserError, RequestDataTooBig, TooManyFieldsSent) as problem:
            raise ApiError(
                400, f"We could not read the form body of your request: {problem}."
            ) from None
        return fields
    if not request.body:
        return {}
    raise ApiError(
        400,
        f"Unsupported content type {request.content_type!r}: send application/json or "
        "multipart/form-data.",
    )


def _body_limit() -> str:
    return f"{settings.DATA_UPLOAD_MAX_MEMORY_SIZE / (1024 * 1024):.1f} MB"


def _text(data: dict[str, Any], name: str, *, required: bool = False) -> str | None:
    value = data.get(name)
    if value is None:
        if required:
            raise ApiError(400, f"Missing required parameter: '{name}'.", name, "missing")
        return None
    if not isinstance(value, str):
        raise ApiError(400, f"'{name}' must be a string.", name, "invalid_type")
    try:
        # JSON may spell lone surrogates ("\ud800"), which no UTF-8 database column can hold.
        value.encode()
    except UnicodeEncodeError:
        raise ApiError(400, f"'{name}' is not valid Unicode text.", name, "invalid_value") from None
    return value


_WHOLE = re.compile(r"[0-9]{1,4}")


def _seconds(data: dict[str, Any]) -> int | None:
    value = data.get("seconds")
    if value is None:
        return None
    if isinstance(value, str) and _WHOLE.fullmatch(value.strip()):
        return int(value.strip())
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 10_000:
        return value
    raise ApiError(
        400, "'seconds' must be a whole number of seconds, e.g. \"4\".", "seconds", "invalid_type"
    )


@api_endpoint("GET", "POST")
def videos(request: HttpRequest, token: ApiToken, project: Project | None) -> dict[str, Any]:
    if request.method == "POST":
        return _create(request, token, project)
    limit_text = request.GET.get("limit", str(LIST_DEFAULT_LIMIT))
    if not _WHOLE.fullmatch(limit_text) or int(limit_text) > LIST_MAX_LIMIT:
        raise ApiError(
            400, f"'limit' must be a whole number from 0 to {LIST_MAX_LIMIT}.", "limit", "invalid"
        )
    order = request.GET.get("order", "desc")
    if order not in ("asc", "desc"):
        raise ApiError(400, "'order' must be 'asc' or 'desc'.", "order", "invalid")
    after_id = request.GET.get("after") or None
    after = None
    if after_id is not None:
        try:
            after = video_get(token=token, project=project, video_id=after_id)
        except ApiError:
            raise ApiError(
                400, f"'after' names no video of yours: '{after_id}'.", "after", "invalid"
            ) from None
    page = videos_list(
        token=token, project=project, after=after, limit=int(limit_text), order=order
    )
    data = [video_payload(v) for v in page.videos]
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": page.has_more,
    }


def _create(request: HttpRequest, token: ApiToken, project: Project | None) -> dict[str, Any]:
    data = _body(request)
    prompt = _text(data, "prompt", required=True)
    assert prompt is not None
    generation = video_create(
        token=token,
        project=project,
        model=_text(data, "model"),
        prompt=prompt,
        size=_text(data, "size"),
        seconds=_seconds(data),
        reference=_input_reference(data),
    )
    return video_payload(generation)


_DATA_URL = re.compile(r"data:image/[A-Za-z0-9.+-]+;base64,(?P<data>.*)", re.DOTALL)


def _reference_object(data: dict[str, Any]) -> dict[str, Any] | None:
    """``input_reference`` as an object: JSON's own, or multipart's ``input_reference[...]``."""
    value = data.get("input_reference")
    if isinstance(value, dict):
        return value
    nested = {
        key[len("input_reference[") : -1]: item
        for key, item in data.items()
        if key.startswith("input_reference[") and key.endswith("]")
    }
    return nested or None


def _input_reference(data: dict[str, Any]) -> CheckedImage | None:
    """The first frame a create starts from: an uploaded image or a base64 data URL, checked by
    its content (the images module decides, as for the web form)."""
    value = data.get("input_reference")
    name = "input_reference"
    if isinstance(value, UploadedFile):
        if value.size is not None and value.size > MAX_IMAGE_BYTES:
            raise ApiError(
                400,
                f"'input_reference' is larger than {MAX_IMAGE_BYTES // (1024 * 1024)} MB.",
                name,
                "invalid_image",
            )
        content = value.read()
        filename = value.name or ""
    else:
        reference = _reference_object(data)
        if reference is None:
            if value is None:
                return None
            raise ApiError(
                400,
                "'input_reference' must be an image file (multipart) or an object with "
                "'image_url' (a data:image/...;base64 URL).",
                name,
                "invalid_type",
            )
        if reference.get("file_id") is not None:
            raise ApiError(
                400,
                "'input_reference.file_id' is not supported: Reelhouse has no Files API. Upload "
                "the image itself, or send it as 'image_url' with a data:image/...;base64 URL.",
                "input_reference.file_id",
                "unsupported_parameter",
            )
        url = reference.get("image_url")
        if not isinstance(url, str):
            raise ApiError(
                400,
                "'input_reference' needs 'image_url' (a data:image/...;base64 URL).",
                "input_reference.image_url",
                "missing",
            )
        match = _DATA_URL.fullmatch(url.strip())
        if match is None:
            # Fetching a caller's URL from our server would let a script make us reach
            # addresses of its choice; the image comes with the request instead.
            raise ApiError(
                400,
                "'input_reference.image_url' must be a data:image/...;base64 URL: Reelhouse "
                "does not fetch remote images. Upload the file, or inline it as base64.",
                "input_reference.image_url",
                "unsupported_url",
            )
        try:
            content = base64.b64decode(match["data"], validate=True)
        except (binascii.Error, ValueError):
            raise ApiError(
                400,
                "'input_reference.image_url' is not valid base64.",
                "input_reference.image_url",
                "invalid_value",
            ) from None
        filename = ""
        name = "input_reference.image_url"
    try:
        return image_check(content, name=filename)
    except ImageRefused as refusal:
        raise ApiError(400, str(refusal), name, "invalid_image") from None


def _source_video_id(data: dict[str, Any]) -> str:
    """The video an edit or extension changes: JSON ``video: {"id": ...}``, multipart
    ``video[id]``, or a bare id; never an uploaded file."""
    value = data.get("video")
    if value is None and "video[id]" in data:
        value = {"id": data["video[id]"]}
    if isinstance(value, UploadedFile):
        raise ApiError(
            400,
            "'video' as an uploaded file is not supported: Reelhouse changes its own videos "
            "only. Send the id of one of your completed videos as video[id] (or "
            '{"video": {"id": ...}} in JSON).',
            "video",
            "unsupported_parameter",
        )
    if value is None:
        raise ApiError(400, "Missing required parameter: 'video'.", "video", "missing")
    if isinstance(value, dict):
        value = value.get("id")
    if not isinstance(value, str) or not value.strip():
        raise ApiError(
            400,
            '\'video\' must name one of your completed videos: {"id": "..."}.',
            "video",
            "invalid_type",
        )
    return value.strip()


def _change(
    request: HttpRequest,
    token: ApiToken,
    project: Project | None,
    *,
    operation: str,
    video_id: str | None = None,
) -> dict[str, Any]:
    data = _body(request)
    param = "video_id" if video_id is not None else "video"
    source_id = video_id if video_id is not None else _source_video_id(data)
    prompt = _text(data, "prompt", required=True)
    assert prompt is not None
    seconds = None
    if operation == Operation.EXTEND:
        seconds = _seconds(data)
        if seconds is None:
            # Required by OpenAI's contract: the length added is what the caller pays for.
            raise ApiError(400, "Missing required parameter: 'seconds'.", "seconds", "missing")
    generation = video_change(
        token=token,
        project=project,
        operation=operation,
        video_id=source_id,
        prompt=prompt,
        seconds=seconds,
        param=param,
    )
    return video_payload(generation)


@api_endpoint("POST")
def video_edits(request: HttpRequest, token: ApiToken, project: Project | None) -> dict[str, Any]:
    return _change(request, token, project, operation=Operation.EDIT)


@api_endpoint("POST")
def video_extensions(
    request: HttpRequest, token: ApiToken, project: Project | None
) -> dict[str, Any]:
    return _change(request, token, project, operation=Operation.EXTEND)


@api_endpoint("GET", "DELETE")
def video(
    request: HttpRequest, token: ApiToken, project: Project | None, video_id: str
) -> dict[str, Any] | HttpResponse:
    if request.method == "DELETE":
        deleted = video_delete(token=token, project=project, video_id=video_id)
        return {"id": deleted, "object": "video.deleted", "deleted": True}
    generation = video_get(token=token, project=project, video_id=video_id)
    response = JsonResponse(video_payload(generation))
    if not generation.is_terminal:
        # The SDK's create_and_poll waits this long between looks.
        response["openai-poll-after-ms"] = "2000"
    return response


@api_endpoint("GET", "HEAD")
def video_content(
    request: HttpRequest, token: ApiToken, project: Project | None, video_id: str
) -> HttpResponseBase:
    variant = request.GET.get("variant", "video")
    if variant not in VARIANTS:
        raise ApiError(
            400, f"'variant' must be one of {', '.join(VARIANTS)}.", "variant", "invalid"
        )
    generation = video_get(token=token, project=project, video_id=video_id)
    if generation.files_removed_at is not None:
        raise ApiError(
            410,
            f"The files of video '{video_id}' were removed by the retention policy on "
            f"{generation.files_removed_at:%Y-%m-%d}.",
            "variant",
            "content_removed",
        )
    stored = getattr(generation, variant)
    if not stored:
        raise ApiError(
            404,
            f"Video '{video_id}' has no {variant} (it is {video_payload(generation)['status']}).",
            "variant",
            "content_not_available",
        )
    extension = stored.name.rsplit(".", 1)[-1]
    try:
        # The same headers as the app's own file serving: our content type, nosniff, sandbox.
        response = file_response(
            request,
            stored,
            filename=f"reelhouse-{str(generation.pk)[:8]}-{variant}.{extension}",
            as_attachment=True,
            # The bytes, always: OpenAI's endpoint answers with them, and a script (curl
            # without -L) would save an empty redirect as the video.
            may_redirect=False,
        )
    except OSError:
        logger.warning("stored %s of %s is missing", variant, generation.pk, exc_info=True)
        raise not_found(video_id) from None
    response.setdefault("Cache-Control", "private, max-age=3600")
    return response


@api_endpoint("POST")
def video_remix(
    request: HttpRequest, token: ApiToken, project: Project | None, video_id: str
) -> dict[str, Any]:
    return _change(request, token, project, operation=Operation.REMIX, video_id=video_id)


def not_available(feature: str, *methods: str) -> Callable[..., HttpResponseBase]:
    @api_endpoint(*methods)
    def view(
        request: HttpRequest, token: ApiToken, project: Project | None, **_: Any
    ) -> dict[str, Any]:
        raise ApiError(404, f"{feature} are not available in Reelhouse yet.", None, "unsupported")

    return view


@csrf_exempt
def v1_not_found(request: HttpRequest) -> JsonResponse:
    return _error_response(
        ApiError(
            404, f"Reelhouse's API has no {request.method} {request.path}.", None, "unknown_url"
        )
    )
