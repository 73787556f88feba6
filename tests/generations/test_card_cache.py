"""Gallery cards drawn once per version and role (workspace/generations/cards.py): a kept card
never carries one member's star or CSRF token to another, never outlives a change to what it
shows, and its relative time is written fresh on every page."""

from __future__ import annotations

import re
import zoneinfo
from datetime import datetime, timedelta

import pytest
from django.contrib.auth.models import User
from django.contrib.humanize.templatetags import humanize
from django.test import Client
from django.urls import reverse
from django.utils import formats, timezone

from workspace.generations.cards import STAR_OFF, STAR_ON, card_key, fragments
from workspace.generations.models import Generation, Status
from workspace.projects.models import Membership, Role
from workspace.projects.services import membership_add
from workspace.reviews.selectors import reviews_attach
from workspace.reviews.services import favourite_toggle, review_decide

from ..conftest import PASSWORD


@pytest.fixture
def finished(project, teammate, channel) -> Generation:  # type: ignore[no-untyped-def]
    fragments.clear()
    return Generation.objects.create(
        project=project,
        created_by=teammate,
        channel=channel,
        model="sora-2",
        prompt="Gulls over a harbour wall",
        size="1280x720",
        seconds=4,
        status=Status.FAILED,
        error_class="content_policy",
        error_message="first reason",
        created_at=timezone.now() - timedelta(hours=2),
    )


def _completed(project, teammate, channel, prompt: str) -> Generation:  # type: ignore[no-untyped-def]
    return Generation.objects.create(
        project=project,
        created_by=teammate,
        channel=channel,
        model="sora-2",
        prompt=prompt,
        size="1280x720",
        seconds=4,
        status=Status.COMPLETED,
        progress=100,
        completed_at=timezone.now(),
    )


def _page(client: Client, project) -> str:  # type: ignore[no-untyped-def]
    answer = client.get(reverse("projects:detail", args=[project.pk]))
    assert answer.status_code == 200
    return answer.content.decode()


def _card(page: str, generation: Generation) -> str:
    match = re.search(rf'<li [^>]*id="gen-{generation.pk}".*?</li>', page, re.S)
    assert match is not None
    return match.group(0)


def _signed_in(user, **options) -> Client:  # type: ignore[no-untyped-def]
    client = Client(**options)
    assert client.login(username=user.username, password=PASSWORD)
    return client


def test_a_members_star_is_not_served_to_another(project, owner, viewer, finished) -> None:  # type: ignore[no-untyped-def]
    favourite_toggle(generation=finished, user=owner)
    owners = _card(_page(_signed_in(owner), project), finished)
    viewers = _card(_page(_signed_in(viewer), project), finished)  # the kept card
    assert STAR_ON in owners and STAR_OFF not in owners
    assert STAR_OFF in viewers and STAR_ON not in viewers
    # ... and the other way round, with the viewer's page drawn first.
    fragments.clear()
    favourite_toggle(generation=finished, user=owner)
    favourite_toggle(generation=finished, user=viewer)
    viewers = _card(_page(_signed_in(viewer), project), finished)
    owners = _card(_page(_signed_in(owner), project), finished)
    assert STAR_ON in viewers and STAR_OFF in owners


def test_a_kept_cards_form_carries_the_viewers_own_csrf_token(
    project, owner, viewer, finished
) -> None:  # type: ignore[no-untyped-def]
    _page(_signed_in(owner), project)  # the owner's page draws and keeps the card
    client = _signed_in(viewer, enforce_csrf_checks=True)
    card = _card(_page(client, project), finished)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', card)
    assert token is not None
    url = reverse("reviews:favourite", args=[project.pk, finished.pk])
    answer = client.post(url, {"csrfmiddlewaretoken": token.group(1)})
    assert answer.status_code == 302  # a token from someone else's session would be a 403
    assert STAR_ON in _card(_page(client, project), finished)


def test_a_change_to_the_row_is_never_served_from_the_kept_card(
    project, owner, finished
) -> None:  # type: ignore[no-untyped-def]
    client = _signed_in(owner)
    assert "first reason" in _card(_page(client, project), finished)
    # Only the row's version says it changed: same status, same everything else in the key.
    Generation.objects.filter(pk=finished.pk).update(
        error_message="second reason", updated_at=timezone.now() + timedelta(seconds=1)
    )
    card = _card(_page(client, project), finished)
    assert "second reason" in card and "first reason" not in card


def test_a_review_decision_shows_on_the_next_page(project, owner, teammate, channel) -> None:  # type: ignore[no-untyped-def]
    fragments.clear()
    video = _completed(project, teammate, channel, "A lantern on a jetty")
    client = _signed_in(owner)
    assert "review-approved" not in _card(_page(client, project), video)
    review_decide(generation=video, actor=owner, state="approved")
    assert "review-approved" in _card(_page(client, project), video)


def test_the_key_holds_the_version_and_the_viewers_role(project, owner, viewer, finished) -> None:  # type: ignore[no-untyped-def]
    """Fails if a card drawn for one role could be served to another, or an older version
    to anyone (no finished card shows role-dependent controls today; the key keeps it so)."""
    as_owner = Membership.objects.get(project=project, user=owner)
    as_viewer = Membership.objects.get(project=project, user=viewer)
    (card,) = reviews_attach(
        list(Generation.objects.select_related("created_by", "channel").filter(pk=finished.pk)),
        user=owner,
    )
    key = card_key(card, project=project, membership=as_owner)
    assert key is not None
    assert key != card_key(card, project=project, membership=as_viewer)
    card.updated_at += timedelta(microseconds=1)
    assert key != card_key(card, project=project, membership=as_owner)


def test_a_queued_cards_cancel_button_is_drawn_for_its_creator_only(
    project, teammate, channel
) -> None:  # type: ignore[no-untyped-def]
    fragments.clear()
    other_editor = User.objects.create_user("other-editor", password=PASSWORD)
    membership_add(project=project, username=other_editor.username, role=Role.EDITOR, actor=None)
    queued = Generation.objects.create(
        project=project,
        created_by=teammate,
        channel=channel,
        model="sora-2",
        prompt="A heron waits",
        size="1280x720",
        seconds=4,
        status=Status.QUEUED,
    )
    # Same role, same card: only who queued it tells the two editors' cards apart.
    assert ">Cancel<" in _card(_page(_signed_in(teammate), project), queued)
    assert ">Cancel<" not in _card(_page(_signed_in(other_editor), project), queued)


def test_the_relative_time_is_written_fresh_on_a_kept_card(
    project, owner, finished, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    client = _signed_in(owner)
    assert "2\xa0hours ago" in _card(_page(client, project), finished)

    class Later(datetime):
        @classmethod
        def now(cls, tz=None):  # type: ignore[no-untyped-def, override]
            return datetime.now(tz) + timedelta(days=1)

    monkeypatch.setattr(humanize, "datetime", Later)
    card = _card(_page(client, project), finished)
    assert "1\xa0day, 2\xa0hours ago" in card and "data-relative>2\xa0hours ago" not in card


def test_the_card_escapes_member_text_and_writes_times_in_the_sites_zone(
    project, owner, teammate, channel, settings
) -> None:  # type: ignore[no-untyped-def]
    """The card is a Jinja2 template (templates/jinja2/): member text is escaped in element
    text and attributes alike, and its datetimes are in the site's time zone and format, as
    Django's ``date`` filter and ``{{ value }}`` wrote them."""
    settings.TIME_ZONE = "Asia/Kolkata"
    fragments.clear()
    made = timezone.now() - timedelta(hours=3)
    video = Generation.objects.create(
        project=project,
        created_by=teammate,
        channel=channel,
        model="sora-2",
        prompt='<script>alert("x")</script> & \'quoted\' "words"',
        size="1280x720",
        seconds=4,
        status=Status.FAILED,
        error_class="content_policy",
        error_message="<b>refused</b>",
        created_at=made,
    )
    card = _card(_page(_signed_in(owner), project), video)
    assert "<script>" not in card and "<b>" not in card
    assert "&lt;script&gt;" in card and "&lt;b&gt;refused&lt;/b&gt;" in card
    assert 'title="\u2068&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &#39;quoted' in card
    local = timezone.localtime(made, zoneinfo.ZoneInfo("Asia/Kolkata"))
    assert f'<time datetime="{local.isoformat()}"' in card
    assert f'title="{formats.localize(local)}"' in card
    assert local.isoformat().endswith("+05:30")
    assert f'data-created="{int(made.timestamp())}.{made.microsecond:06d}"' in card


def test_cards_without_a_decision_cost_no_decision_query(
    project, owner, teammate, channel, django_assert_num_queries
) -> None:  # type: ignore[no-untyped-def]
    """The row keeps its current decision's state, so a live update's undecided card (every
    in-flight one) asks for its star only; a decided card still shows who decided and when."""
    video = _completed(project, teammate, channel, "A kite over dunes")
    cards = list(Generation.objects.filter(pk=video.pk))
    with django_assert_num_queries(1):
        reviews_attach(cards, user=owner)
    assert cards[0].review is None  # type: ignore[attr-defined]
    review_decide(generation=video, actor=owner, state="changes")
    cards = list(Generation.objects.filter(pk=video.pk))
    with django_assert_num_queries(2):
        reviews_attach(cards, user=owner)
    assert cards[0].review.state == "changes"  # type: ignore[attr-defined]
    assert cards[0].review.decided_by == owner  # type: ignore[attr-defined]
