"""Gallery cards, each drawn once per version and viewer role and reused (issue 13).

Rendering a card's template was most of a gallery page's CPU (48 cards, ~0.5-1 ms each in
Django's template language; the card is now a Jinja2 template, a few times cheaper, see
generations/templatetags/jinja_env.py), and a page drawn again need not draw its cards. A finished
card's markup changes only when its row, its review decision, its stack or the people and
channel it names change, and differs between viewers in three places only: the favourite star
(per member), the CSRF token of the star's form (per session) and the relative time ("3 minutes
ago", per moment). So the markup is drawn with none of those three in it: the star unpressed,
the token and the time as markers no member's text can contain (NUL: PostgreSQL refuses it in
text and Django's form fields reject it); each request fills them in for its viewer.

A card in flight also shows what moves without its row changing (queue standing and its
words, progress clock) and, queued, a Cancel button for the owner or the editor who queued it:
those values are part of its key, so 50 open pages that are sent the same changed card draw it
once. The key holds every value the template reads beyond the row's version, and the viewer's
role though no finished card shows role-dependent controls today, so a control added for some
roles later cannot leak to the others.

The store is a bounded LRU per process: nothing to invalidate across a deploy (a new process
starts empty) and no network round trip.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from typing import Any

from django.contrib.humanize.templatetags.humanize import naturaltime
from django.http import HttpRequest
from django.middleware.csrf import get_token
from django.template import engines
from django.utils import timezone, translation
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from workspace.generations.models import TERMINAL_STATUSES, Generation
from workspace.generations.selectors import live_version
from workspace.projects.models import Membership, Project

CARD_TEMPLATE = "generations/_card.html"  # in templates/jinja2/ (the Jinja2 engine)
CACHE_SIZE = 4096  # cards (~3 kB each): ~12 MB per process at most

_CSRF = "\x00csrf\x00"
_TIME = "\x00time\x00"
# The favourite button as the template draws it, unpressed and pressed; its quotes and angle
# brackets cannot come from member text (escaped), so the first match is the button.
STAR_OFF = 'aria-pressed="false" data-favourite><span class="star-mark" aria-hidden="true">☆</span>'
STAR_ON = 'aria-pressed="true" data-favourite><span class="star-mark" aria-hidden="true">★</span>'


class _Fragments:
    """A thread-safe LRU of card markup (gunicorn runs threads)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[Hashable, str] = OrderedDict()
        self._lock = threading.Lock()

    def get_many(self, keys: Sequence[Hashable]) -> dict[Hashable, str]:
        found: dict[Hashable, str] = {}
        with self._lock:
            for key in keys:
                html = self._items.get(key)
                if html is not None:
                    self._items.move_to_end(key)
                    found[key] = html
        return found

    def set(self, key: Hashable, html: str) -> None:
        with self._lock:
            self._items[key] = html
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


fragments = _Fragments(CACHE_SIZE)


def _locale() -> tuple[str, str | None]:
    """The time zone and language the cards are drawn in."""
    return timezone.get_current_timezone_name(), translation.get_language()


def card_key(
    generation: Generation,
    *,
    project: Project,
    membership: Membership,
    locale: tuple[str, str | None] | None = None,
) -> Hashable:
    """Everything a card's markup depends on except the star, token and time (``locale``:
    ``_locale()``, read once per page by the caller that has many cards)."""
    in_flight: tuple[object, ...] = ()
    if generation.status not in TERMINAL_STATUSES:
        standing = getattr(generation, "standing", None)
        in_flight = (
            getattr(generation, "progress_shown", None),
            getattr(generation, "progress_started", None),
            getattr(generation, "progress_expected", None),
            standing and standing.position,
            getattr(generation, "standing_headline", ""),
            getattr(generation, "standing_detail", ""),
            # Cancel: for the owner, or for the editor who queued it.
            generation.created_by_id == membership.user_id,
        )
    review = getattr(generation, "review", None)
    inputs = []
    for item in generation.inputs.all():
        source = item.source_generation if item.source_generation_id else None
        # "from a frame of <that video>" or "of another video": the source's project decides.
        inputs.append((item.pk, item.source_generation_id, source and source.project_id))
    return (
        generation.pk,
        live_version(generation),
        generation.status,
        bool(generation.video),
        bool(generation.thumbnail),
        project.pk,
        membership.role,
        generation.stack_id,
        getattr(generation, "stack_size", 1),
        getattr(generation, "stack_is_takes", False),
        generation.is_pick,
        generation.created_at,
        None
        if review is None
        else (review.pk, review.state, review.decided_at, review.decided_by.get_username()),
        generation.created_by.get_username(),
        generation.channel.name,
        tuple(inputs),
        locale or _locale(),
        in_flight,
    )


def _card_template() -> Any:
    """The card's template, from the Jinja2 engine (settings.TEMPLATES) by name."""
    return engines["jinja2"].get_template(CARD_TEMPLATE)


def _relative(generation: Generation) -> str:
    """The card's relative time (``relative_time`` in its template), escaped as the template
    would write it."""
    return str(escape(naturaltime(generation.created_at)))


def _draw(generation: Generation, context: dict[str, Any]) -> str | None:
    """The card's markup with the markers in place of the star, token and time; None if the
    template no longer draws them as expected (the card is then not kept)."""
    favourite = getattr(generation, "is_favourite", False)
    generation.is_favourite = False  # type: ignore[attr-defined]
    try:
        html = _card_template().render({**context, "generation": generation})
    finally:
        generation.is_favourite = favourite  # type: ignore[attr-defined]
    if html.count(_TIME) != 1 or html.count(STAR_OFF) != 1:
        return None
    return html


def cards_render(
    generations: Sequence[Generation],
    *,
    request: HttpRequest,
    project: Project,
    membership: Membership,
) -> list[SafeString]:
    """Each card's markup for this viewer, in order: kept ones reused, the rest drawn and kept."""
    locale = _locale()
    keys = [card_key(g, project=project, membership=membership, locale=locale) for g in generations]
    kept = fragments.get_many(keys)
    token: str | None = None
    context: dict[str, Any] = {
        "project": project,
        "membership": membership,
        "user": request.user,
        "request": request,
        "csrf_token": _CSRF,
        "relative_time": _TIME,
    }
    cards: list[SafeString] = []
    for generation, key in zip(generations, keys, strict=True):
        html = kept.get(key)
        if html is None:
            drawn = _draw(generation, context)
            if drawn is None:  # drawn with the real values, never kept
                html = _card_template().render(
                    {
                        "project": project,
                        "membership": membership,
                        "user": request.user,
                        "generation": generation,
                        "csrf_token": get_token(request),
                        "relative_time": naturaltime(generation.created_at),
                    }
                )
                cards.append(mark_safe(html))  # noqa: S308 - the template's own output
                continue
            html = drawn
            fragments.set(key, html)
        if token is None:
            token = get_token(request)
        html = html.replace(_CSRF, token).replace(_TIME, _relative(generation))
        if getattr(generation, "is_favourite", False):
            html = html.replace(STAR_OFF, STAR_ON, 1)
        cards.append(mark_safe(html))  # noqa: S308 - the template's own output, markers filled
    return cards
