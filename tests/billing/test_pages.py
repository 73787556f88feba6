"""The member's usage page, notifications, and the admin usage panel, budgets and prices."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from tests.billing.conftest import budget, submit
from tests.conftest import PASSWORD
from workspace.billing.models import Budget, BudgetCounter, LedgerEntry, Price, Scope
from workspace.billing.services import adjustment_create, prices_seed, reservation_settle
from workspace.core.models import AuditEvent
from workspace.generations.models import Generation, Status

PANEL = "admin:billing_usagepanel_changelist"


@pytest.fixture
def spending(project, owner, teammate, admin_user):  # type: ignore[no-untyped-def]
    """A little history: completed, queued and a refunded job, under three budgets."""
    budget(cents=1000)
    budget(Scope.ORGANISATION, cents=5000)
    budget(Scope.PROJECT, project=project, cents=3000)
    done = submit(project, teammate, model="sora-2-pro", seconds=8)  # $2.40
    Generation.objects.filter(pk=done.pk).update(status=Status.COMPLETED)
    reservation_settle(generation=done)
    submit(project, teammate)  # $0.40 reserved
    submit(project, owner, prompt="=HYPERLINK(evil)")
    adjustment_create(
        actor=admin_user, member=teammate, amount_cents=-40, reason="=SUM(A1) refund test"
    )
    return done


def test_my_usage_shows_budgets_and_spend_by_project_and_model(client, teammate, spending) -> None:  # type: ignore[no-untyped-def]
    client.force_login(teammate)
    response = client.get(reverse("billing:usage"))
    assert response.status_code == 200
    page = response.content.decode()
    assert "My usage" in page
    # Member budget: $2.40 - $0.40 refund spent, $0.40 reserved, $8.00 left of $10.00.
    assert "Your monthly budget" in page
    assert "$2.00" in page and "$0.40" in page and "$7.60" in page and "$10.00" in page
    assert "resets in" in page
    assert "Launch film" in page and "Sora 2 Pro" in page
    assert "The organisation&#x27;s monthly budget" in page or "organisation's" in page
    assert 'aria-current="page">Usage</a>' in page


def test_usage_pages_need_a_sign_in(client) -> None:  # type: ignore[no-untyped-def]
    for name in ("billing:usage", "billing:notifications"):
        response = client.get(reverse(name))
        assert response.status_code == 302 and "/accounts/sign-in/" in response["Location"]


def test_notifications_badge_list_and_mark_read(client, project, teammate) -> None:  # type: ignore[no-untyped-def]
    budget(cents=40)
    submit(project, teammate)  # 100 % of the budget
    client.force_login(teammate)
    page = client.get(reverse("projects:list")).content.decode()
    assert 'aria-label="1 unread"' in page
    listing = client.get(reverse("billing:notifications")).content.decode()
    assert "Your monthly budget is at 100 %" in listing
    client.post(reverse("billing:notifications_read"))
    page = client.get(reverse("projects:list")).content.decode()
    assert "unread" not in page.split("</nav>")[0].split('class="topnav"')[1]


def test_the_panel_renders_for_an_admin(client, admin_user, spending) -> None:  # type: ignore[no-untyped-def]
    client.force_login(admin_user)
    response = client.get(reverse(PANEL))
    assert response.status_code == 200
    page = response.content.decode()
    for words in (
        "Spend per day by model",
        "<svg",
        "By member",
        "By project",
        "Budgets: period to date",
        "Organisation monthly budget",
        "Default member monthly budget (tariq)",
        "Failures per day by error class",
        "Channels now",
        "Export the ledger of this range (CSV)",
        "tariq",
        "Launch film",
    ):
        assert words in page, words
    # Spent in the range: $2.40 settled - $0.40 refund.
    assert "$2.00" in page


def test_the_panel_runs_the_same_few_queries_for_any_range(client, admin_user, spending) -> None:  # type: ignore[no-untyped-def]
    client.force_login(admin_user)
    today = timezone.localdate()
    counts = []
    for days in (30, 365):
        first = today - timedelta(days=days - 1)
        with CaptureQueriesContext(connection) as queries:
            response = client.get(reverse(PANEL), {"first": first, "last": today})
        assert response.status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1] <= 25
    assert "wk " in response.content.decode()  # a year is charted per week


def test_the_panel_is_refused_to_members(client, teammate, spending) -> None:  # type: ignore[no-untyped-def]
    client.force_login(teammate)
    for url in (reverse(PANEL), reverse("admin:billing_usagepanel_export")):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("admin:login"))
    client.logout()
    assert client.get(reverse(PANEL)).status_code == 302


def test_staff_without_the_usage_permission_get_403_for_the_panel_and_export(client, project) -> None:  # type: ignore[no-untyped-def]
    staff = User.objects.create_user(username="sam", password=PASSWORD, is_staff=True)
    client.force_login(staff)
    assert client.get(reverse(PANEL)).status_code == 403
    assert client.get(reverse("admin:billing_usagepanel_export")).status_code == 403
    # Nor is the panel offered on the admin's index.
    assert reverse(PANEL) not in client.get(reverse("admin:index")).content.decode()


def test_staff_with_the_usage_permission_see_the_panel_and_export(client, project) -> None:  # type: ignore[no-untyped-def]
    staff = User.objects.create_user(username="sam", password=PASSWORD, is_staff=True)
    staff.user_permissions.add(
        Permission.objects.get(content_type__app_label="billing", codename="view_usage_panel")
    )
    client.force_login(staff)
    assert client.get(reverse(PANEL)).status_code == 200
    today = timezone.localdate()
    export = client.get(reverse("admin:billing_usagepanel_export"), {"first": today, "last": today})
    assert export.status_code == 200
    assert reverse(PANEL) in client.get(reverse("admin:index")).content.decode()


def test_superusers_have_the_usage_permission_implicitly(client, admin_user, spending) -> None:  # type: ignore[no-untyped-def]
    client.force_login(admin_user)
    assert client.get(reverse(PANEL)).status_code == 200
    today = timezone.localdate()
    export = client.get(reverse("admin:billing_usagepanel_export"), {"first": today, "last": today})
    assert export.status_code == 200


def test_the_panel_has_no_inline_style(client, admin_user, spending) -> None:  # type: ignore[no-untyped-def]
    """The CSP allows no inline style: the charts' legend uses classes, the page a stylesheet."""
    client.force_login(admin_user)
    page = client.get(reverse(PANEL)).content.decode()
    assert "swatch swatch-0" in page
    assert " style=" not in page
    assert "<style" not in page


def test_the_ledger_exports_as_csv_without_formulas(client, admin_user, spending) -> None:  # type: ignore[no-untyped-def]
    client.force_login(admin_user)
    today = timezone.localdate()
    response = client.get(
        reverse("admin:billing_usagepanel_export"), {"first": today, "last": today}
    )
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][:5] == ["id", "created_at", "accounted_at", "kind", "member"]
    assert len(rows) == 1 + LedgerEntry.objects.count()
    kinds = sorted(row[3] for row in rows[1:])
    assert kinds == ["adjustment", "reserve", "reserve", "reserve", "settle"]
    reasons = [row[-1] for row in rows[1:] if row[-1]]
    assert "'=SUM(A1) refund test" in reasons


def test_budgets_are_edited_in_dollars_and_every_change_is_audited(
    client, admin_user, teammate
) -> None:  # type: ignore[no-untyped-def]
    client.force_login(admin_user)
    response = client.post(
        reverse("admin:billing_budget_add"),
        {
            "scope": "member",
            "user": teammate.pk,
            "period": "week",
            "limit_dollars": "12.50",
            "limit_seconds": "",
            "allowed_models": ["sora-2"],
            "is_active": "on",
            "note": "",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    created = Budget.objects.get()
    assert (created.limit_cents, created.allowed_models, created.period) == (
        1250,
        ["sora-2"],
        "week",
    )
    response = client.post(
        reverse("admin:billing_budget_change", args=[created.pk]),
        {
            "scope": "member",
            "user": teammate.pk,
            "period": "week",
            "limit_dollars": "20",
            "limit_seconds": "60",
            "is_active": "on",
            "note": "",
        },
    )
    assert response.status_code == 302
    events = list(AuditEvent.objects.filter(target_type="budget").order_by("id"))
    assert [e.action for e in events] == ["created", "changed"]
    assert all(e.actor_name == "ada" for e in events)
    assert events[1].changes["limit_cents"] == [1250, 2000]
    assert events[1].changes["limit_seconds"] == [None, 60]
    assert events[1].changes["allowed_models"] == [["sora-2"], []]
    log = client.get(reverse("admin:core_auditevent_changelist")).content.decode()
    assert "limit_cents: 1250 → 2000" in log


def test_a_project_budget_must_name_its_project(client, admin_user) -> None:  # type: ignore[no-untyped-def]
    client.force_login(admin_user)
    response = client.post(
        reverse("admin:billing_budget_add"),
        {"scope": "project", "period": "month", "limit_dollars": "5", "is_active": "on"},
    )
    assert response.status_code == 200
    assert "Choose the project this budget is for." in response.content.decode()
    assert not Budget.objects.exists()


def test_prices_in_effect_are_read_only_and_new_ones_are_added(client, admin_user, channel) -> None:  # type: ignore[no-untyped-def]
    client.force_login(admin_user)
    listing = client.get(reverse("admin:billing_price_changelist")).content.decode()
    assert "$0.5000/s" in listing and "in effect" in listing
    seeded = Price.objects.get(model="sora-2", size="1280x720")
    change_url = reverse("admin:billing_price_change", args=[seeded.pk])
    response = client.post(change_url, {"usd_per_second": "0.01"})
    assert response.status_code == 403
    seeded.refresh_from_db()
    assert seeded.usd_per_second == Decimal("0.1000")
    start = timezone.localtime() + timedelta(days=7)
    response = client.post(
        reverse("admin:billing_price_add"),
        {
            "channel": channel.pk,
            "model": "sora-2",
            "size": "1280x720",
            "usd_per_second": "0.0800",
            "effective_from_0": start.strftime("%Y-%m-%d"),
            "effective_from_1": start.strftime("%H:%M:%S"),
            "note": "Price cut",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    assert Price.objects.filter(usd_per_second=Decimal("0.08")).exists()
    event = AuditEvent.objects.filter(target_type="price", action="created").order_by("id").last()
    assert event is not None and event.actor_name == "ada"


def test_an_admin_adjustment_is_appended_to_the_ledger(
    client, admin_user, project, teammate
) -> None:  # type: ignore[no-untyped-def]
    budget(cents=1000)
    generation = submit(project, teammate)
    client.force_login(admin_user)
    response = client.post(
        reverse("admin:billing_ledgerentry_add"),
        {"user": teammate.pk, "project": "", "generation": "", "amount": "-1.50",
         "seconds_delta": "0", "reason": "Refund for a broken render"},
    )  # fmt: skip
    assert response.status_code == 302, response.content.decode()[:3000]
    entry = LedgerEntry.objects.get(kind="adjustment")
    assert (entry.spent_cents, entry.created_by_id, entry.user_id) == (
        -150,
        admin_user.pk,
        teammate.pk,
    )
    counter = BudgetCounter.objects.get()
    assert (counter.spent_cents, counter.reserved_cents) == (-150, 40)
    # Append-only: entries cannot be changed or deleted, even by a superuser.
    url = reverse("admin:billing_ledgerentry_change", args=[entry.pk])
    assert client.post(url, {"reason": "edited"}).status_code == 403
    assert (
        client.post(
            reverse("admin:billing_ledgerentry_delete", args=[entry.pk]), {"post": "yes"}
        ).status_code
        == 403
    )
    response = client.post(
        reverse("admin:billing_ledgerentry_add"),
        {"user": teammate.pk, "amount": "2", "seconds_delta": "0", "reason": ""},
    )
    assert (
        response.status_code == 200 and LedgerEntry.objects.filter(kind="adjustment").count() == 1
    )
    assert generation.pk  # the reservation itself stayed as it was
    assert LedgerEntry.objects.get(kind="reserve").reserved_cents == 40


def test_channel_keys_and_memberships_are_audited_by_name(
    client, admin_user, project, owner, outsider, channel
) -> None:  # type: ignore[no-untyped-def]
    from workspace.billing.audit import audit_actor
    from workspace.projects.services import membership_add, membership_remove

    client.force_login(admin_user)
    prices_seed(channel=channel)
    data = {
        field: getattr(channel, field)
        for field in (
            "slug", "name", "protocol", "base_url", "requests_per_minute", "max_in_flight",
            "member_max_in_flight", "member_max_queued", "max_takes", "webhook_secret_env",
        )
    }  # fmt: skip
    data.update({"api_key_env": "GATEWAY_API_KEY", "is_active": "on", "creates_per_minute": ""})
    response = client.post(reverse("admin:providers_channel_change", args=[channel.pk]), data)
    assert response.status_code == 302, response.content.decode()[:3000]
    event = AuditEvent.objects.filter(target_type="channel").order_by("id").last()
    assert event is not None and event.actor_name == "ada"
    assert event.changes["api_key_env"] == ["OPENAI_API_KEY", "GATEWAY_API_KEY"]

    with audit_actor(owner):
        membership = membership_add(project=project, username="oscar", role="viewer", actor=owner)
        membership_remove(membership=membership, actor=owner)
    events = AuditEvent.objects.filter(target_type="membership", actor_name="olivia")
    assert [e.action for e in events.order_by("id")] == ["created", "deleted"]
    assert "oscar in Launch film" in events.first().target_repr  # type: ignore[union-attr]


def test_every_billing_admin_page_renders(client, admin_user, spending) -> None:  # type: ignore[no-untyped-def]
    client.force_login(admin_user)
    entry = LedgerEntry.objects.first()
    budget_row = Budget.objects.first()
    assert entry is not None and budget_row is not None
    for url in (
        reverse("admin:index"),
        reverse("admin:app_list", args=["billing"]),
        reverse("admin:billing_budget_changelist"),
        reverse("admin:billing_budget_add"),
        reverse("admin:billing_budget_change", args=[budget_row.pk]),
        reverse("admin:billing_price_changelist"),
        reverse("admin:billing_price_add"),
        reverse("admin:billing_ledgerentry_changelist"),
        reverse("admin:billing_ledgerentry_add"),
        reverse("admin:billing_ledgerentry_change", args=[entry.pk]),
        reverse("admin:core_auditevent_changelist"),
    ):
        response = client.get(url)
        assert response.status_code == 200, url
    assert "Usage panel" in client.get(reverse("admin:index")).content.decode()


def test_the_budget_strip_shows_what_applies_in_a_project(project, teammate, spending) -> None:  # type: ignore[no-untyped-def]
    from django.template import Context, Template

    html = Template("{% load billing_tags %}{% budget_strip user project %}").render(
        Context({"user": teammate, "project": project})
    )
    assert "Your monthly budget" in html
    assert "Monthly budget of project “Launch film”" in html
    assert "Spent" in html and "Reserved" in html and "Remaining" in html
    assert "resets in" in html


def test_the_sweep_command(project, teammate) -> None:  # type: ignore[no-untyped-def]
    from django.core.management import call_command

    generation = submit(project, teammate)
    Generation.objects.filter(pk=generation.pk).update(status=Status.COMPLETED)
    out = io.StringIO()
    call_command("billing_sweep", "--recount", "--rebuild-rollups", stdout=out)
    text = out.getvalue()
    assert "Closed 1 open reservation" in text
    assert "Corrected 0 budget counter" in text
    assert LedgerEntry.objects.filter(kind="settle").count() == 1
