"""The usage panel's value axes: every label different, and true to where its gridline is."""

from __future__ import annotations

import re

import pytest

from workspace.billing.charts import stacked_bars
from workspace.billing.selectors import Series
from workspace.billing.services import money


def _axis_labels(svg: str) -> list[str]:
    return re.findall(r'<text x="58" y="[\d.]+" text-anchor="end">([^<]*)</text>', svg)


@pytest.mark.parametrize("peak", [1, 2, 3, 5, 7, 10, 40, 1000])
def test_a_count_axis_has_no_repeated_or_rounded_labels(peak: int) -> None:
    svg = stacked_bars(
        title="Failures", labels=["Mon", "Tue"], series=[Series("failed", [peak, 0])],
        unit=lambda n: f"{n:.0f}",
    )  # fmt: skip
    labels = _axis_labels(svg)
    assert len(labels) >= 2 and len(set(labels)) == len(labels), labels
    assert labels[0] == "0" and int(labels[-1]) >= peak


def test_a_money_axis_of_one_cent_reads_zero_and_one_cent() -> None:
    svg = stacked_bars(
        title="Spend", labels=["Mon"], series=[Series("sora-2", [1])],
        unit=lambda cents: money(round(cents)),
    )  # fmt: skip
    assert _axis_labels(svg) == ["$0.00", "$0.01"]


def test_a_large_axis_keeps_four_steps() -> None:
    svg = stacked_bars(
        title="Spend", labels=["Mon"], series=[Series("sora-2", [3900])],  # the axis tops at 5000
        unit=lambda cents: money(round(cents)),
    )  # fmt: skip
    assert _axis_labels(svg) == ["$0.00", "$12.50", "$25.00", "$37.50", "$50.00"]
