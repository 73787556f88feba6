from __future__ import annotations

from django.http import Http404, HttpRequest, JsonResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from workspace.generations.following import generation_check_now
from workspace.providers.models import Channel
from workspace.providers.webhooks import WebhookRejected, webhook_receive


@csrf_exempt  # authenticated by the provider's signature instead
@require_POST
def webhook(request: HttpRequest, channel_slug: str) -> JsonResponse:
    channel = get_object_or_404(Channel, slug=channel_slug, is_active=True)
    headers = {key.lower(): value for key, value in request.headers.items()}
    try:
        outcome = webhook_receive(channel=channel, body=request.body, headers=headers)
    except WebhookRejected as rejected:
        if rejected.status == 404:
            raise Http404(rejected.message) from None
        return JsonResponse({"error": rejected.message}, status=rejected.status)
    if outcome.job_to_check is not None:
        generation_check_now(channel=channel, provider_job_id=outcome.job_to_check)
    return JsonResponse({"ok": True, "duplicate": outcome.duplicate})
