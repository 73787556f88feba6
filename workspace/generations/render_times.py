"""How long a provider takes to render a model: learned from its own clock, else the catalog's.

Used to plan status checks (services), to estimate queue positions and the binding limit
(dispatch) and to move progress bars between checks (selectors); kept here, below all three,
so each imports it at module level.
"""

from __future__ import annotations

from django.conf import settings

from workspace.generations.models import Generation, Status
from workspace.providers.models import Channel

# Samples of the render-time model: the latest renders of a model and length.
RENDER_SAMPLES = 20
# A status check is planned this long after the expected end (plus a small share of the
# render), so it rarely lands just before the finish and needs a second look.
POLL_MARGIN_SECONDS = 0.5
POLL_MARGIN_SHARE = 0.01
# When neither the provider's renders nor the catalog know a model.
FALLBACK_RENDER_SECONDS = 90


def _trimmed_mean(values: list[float]) -> float:
    # The provider's timestamps are whole seconds: a mean (not a median) of many samples
    # averages that rounding out; trimming drops the odd outlier (a retry, a stall).
    values = sorted(values)
    cut = len(values) // 5
    kept = values[cut : len(values) - cut] or values
    return sum(kept) / len(kept)


def expected_render_seconds(
    *, channel_id: int, model: str, seconds: int | None = None
) -> float | None:
    """How long this channel's provider lately took to render this model (and length), if known.

    Learned from the provider's own times (``render_seconds``), so our checking late can never
    make the estimate grow. Without samples of this length, other lengths of the model are
    scaled to it. One indexed query, each time: several worker processes learn from each
    other's renders, which a per-process cache would miss.
    """
    rows: list[tuple[float, int]] = [
        (render, length)
        for render, length in Generation.objects.filter(
            channel_id=channel_id, model=model, render_seconds__isnull=False
        )
        .order_by("-provider_finished_at")
        .values_list("render_seconds", "seconds")[: RENDER_SAMPLES * 3]
        if render is not None
    ]
    same = [r for r, s in rows if seconds is None or s == seconds][:RENDER_SAMPLES]
    if same:
        return _trimmed_mean(same)
    if seconds and rows:
        return _trimmed_mean([r * seconds / s for r, s in rows[:RENDER_SAMPLES] if s])
    return None


def progress_render_seconds(
    *, channel_id: int, model: str, seconds: int | None = None
) -> float | None:
    """Before any render of this model has finished: what its running jobs' progress says.

    Each check records the provider's progress. Providers report 0 % while a job waits its
    turn, so one reading (p % after ``a`` seconds: ``a * 100 / p`` in all) makes the render look
    longer, the more so the earlier it was taken (16 % after 7.5 s of a 30 s render reads as
    47 s). Readings of several jobs at different ages show the pace itself: progress grows
    linearly with age after the queued start, and the line through them reaches 100 % at the
    render's end. One reading, or readings that draw no rising line, give the plain estimate,
    which the line's is never above. The catalog's typical time can be off by a factor of three
    for a provider (or a simulator), and every check planned by it would be.
    """
    rows = (
        Generation.objects.filter(
            channel_id=channel_id,
            model=model,
            status=Status.IN_PROGRESS,
            progress__gt=0,
            progress__lt=100,
            submitted_at__isnull=False,
            last_polled_at__isnull=False,
        )
        .order_by("-last_polled_at")
        .values_list("submitted_at", "last_polled_at", "progress", "seconds")[:RENDER_SAMPLES]
    )
    readings = [
        ((polled - sent).total_seconds() * (seconds / length if seconds else 1), progress / 100)
        for sent, polled, progress, length in rows
        if sent is not None and polled is not None and polled > sent and length
    ]
    if not readings:
        return None
    plain = _trimmed_mean([age / share for age, share in readings])
    ages = [age for age, _ in readings]
    mean_age = sum(ages) / len(ages)
    mean_share = sum(share for _, share in readings) / len(readings)
    spread = sum((age - mean_age) ** 2 for age in ages)
    if len(readings) < 3 or spread <= (0.05 * mean_age) ** 2 * len(readings):
        return plain
    slope = sum((age - mean_age) * (share - mean_share) for age, share in readings) / spread
    if slope <= 0:
        return plain
    end = mean_age + (1 - mean_share) / slope
    return min(plain, max(end, max(ages)))


def typical_render_seconds(*, channel: Channel, model: str) -> float:
    """The catalog's typical render time of ``model`` (in the time scale's seconds)."""
    spec = channel.catalog.get(model)
    typical = spec.typical_render_seconds if spec else FALLBACK_RENDER_SECONDS
    return typical / settings.REELHOUSE_TIME_SCALE


def render_seconds_estimate(*, channel: Channel, model: str, seconds: int) -> float:
    """What to expect of the next render of ``model`` for ``seconds``: learned, else what the
    progress of running jobs says, else typical."""
    return (
        expected_render_seconds(channel_id=channel.pk, model=model, seconds=seconds)
        or progress_render_seconds(channel_id=channel.pk, model=model, seconds=seconds)
        or typical_render_seconds(channel=channel, model=model)
    )


def check_margin_seconds(expected: float) -> float:
    """How long after the expected end of a render of ``expected`` seconds its check is planned."""
    return POLL_MARGIN_SECONDS / settings.REELHOUSE_TIME_SCALE + POLL_MARGIN_SHARE * expected
