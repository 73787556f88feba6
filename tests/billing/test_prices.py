"""The price table: seeded from the published prices, versioned, never rewriting history."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from tests.billing.conftest import submit
from workspace.billing.models import LedgerEntry, Price
from workspace.billing.services import PRICE_SEED_FROM, price_current, price_set, prices_seed


def test_published_prices_are_seeded_from_the_catalog(channel) -> None:  # type: ignore[no-untyped-def]
    assert prices_seed(channel=channel) == 6
    assert prices_seed(channel=channel) == 0  # only once
    table = {(p.model, p.size): p.usd_per_second for p in Price.objects.filter(channel=channel)}
    assert table == {
        ("sora-2", "1280x720"): Decimal("0.1000"),
        ("sora-2", "720x1280"): Decimal("0.1000"),
        ("sora-2-pro", "1280x720"): Decimal("0.3000"),
        ("sora-2-pro", "720x1280"): Decimal("0.3000"),
        ("sora-2-pro", "1792x1024"): Decimal("0.5000"),
        ("sora-2-pro", "1024x1792"): Decimal("0.5000"),
    }
    assert all(p.effective_from == PRICE_SEED_FROM for p in Price.objects.all())


def test_each_generation_is_charged_the_price_in_effect_when_it_was_submitted(
    project, teammate, channel
) -> None:  # type: ignore[no-untyped-def]
    before = submit(project, teammate, model="sora-2-pro", seconds=8)
    assert before.estimated_cost_cents == 240
    later = timezone.now() + timedelta(hours=1)
    price_set(
        channel=channel, model="sora-2-pro", size="1280x720",
        usd_per_second=Decimal("0.3125"), effective_from=later,
    )  # fmt: skip
    # Not yet in effect: submissions now still pay the old price.
    assert submit(project, teammate, model="sora-2-pro", seconds=4).estimated_cost_cents == 120
    assert price_current(
        channel=channel, model="sora-2-pro", size="1280x720", at=later
    ).usd_per_second == Decimal("0.3125")

    Price.objects.filter(effective_from=later).update(effective_from=timezone.now())
    after = submit(project, teammate, model="sora-2-pro", seconds=12)
    # 12 s x $0.3125 = $3.75 exactly; the detail page shows the price table's figure.
    assert after.estimated_cost_cents == 375
    charged = dict(
        LedgerEntry.objects.filter(kind="reserve").values_list("generation_id", "usd_per_second")
    )
    assert charged[before.pk] == Decimal("0.3000")
    assert charged[after.pk] == Decimal("0.3125")
    # History is untouched: the first reservation still holds what it was charged.
    assert LedgerEntry.objects.get(generation_id=before.pk).reserved_cents == 240


def test_fractional_prices_round_half_up_to_whole_cents(channel) -> None:  # type: ignore[no-untyped-def]
    price = Price(
        channel=channel, model="sora-2", size="1280x720", usd_per_second=Decimal("0.2313")
    )
    assert price.cents_for(4) == 93  # 92.52
    assert Price(usd_per_second=Decimal("0.1125")).cents_for(4) == 45  # 45.0
    assert Price(usd_per_second=Decimal("0.10125")).cents_for(2) == 20  # 20.25


def test_a_price_cannot_start_in_the_past_or_name_a_size_the_model_lacks(channel) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationError) as caught:
        price_set(
            channel=channel, model="sora-2", size="1280x720", usd_per_second=Decimal("0.2"),
            effective_from=timezone.now() - timedelta(days=1),
        )  # fmt: skip
    assert "rewrite what past generations cost" in caught.value.message_dict["effective_from"][0]
    with pytest.raises(ValidationError) as caught:
        price_set(channel=channel, model="sora-2", size="1792x1024", usd_per_second=Decimal("1"))
    assert "size" in caught.value.message_dict


def test_without_a_price_a_model_cannot_be_charged_or_submitted(project, teammate, channel) -> None:  # type: ignore[no-untyped-def]
    prices_seed(channel=channel)
    Price.objects.filter(model="sora-2", size="1280x720").update(
        effective_from=timezone.now() + timedelta(days=1)
    )
    with pytest.raises(ValidationError) as caught:
        submit(project, teammate)
    assert "No price is set for sora-2 at 1280x720" in caught.value.message_dict["model"][0]
