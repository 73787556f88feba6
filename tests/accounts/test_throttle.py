"""Sign-in throttling (django-axes): per username and address, on our page and the admin's."""

from __future__ import annotations

import pytest
from axes.models import AccessAttempt
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from tests.conftest import PASSWORD

SIGN_IN = reverse("accounts:login")
ADMIN_SIGN_IN = reverse("admin:login")
HOME = "10.0.0.7"

pytestmark = pytest.mark.django_db


def attempt(client: Client, username: str, password: str, *, url: str = SIGN_IN, address: str = HOME, **headers: str):  # type: ignore[no-untyped-def]
    return client.post(url, {"username": username, "password": password}, REMOTE_ADDR=address, **headers)


def signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def hammer(client: Client, username: str, times: int = 60, **kwargs: str) -> None:
    for _ in range(times):
        attempt(client, username, "wrong password", **kwargs)


def test_sixty_wrong_passwords_then_the_right_one_does_not_sign_in(client: Client, owner: User) -> None:
    hammer(client, owner.username)
    response = attempt(client, owner.username, PASSWORD)
    assert not signed_in(client)
    assert response.status_code == 429
    page = response.content.decode()
    assert (
        "Too many failed sign-ins for this account from your address. Try again in 15 minutes "
        "or ask an admin to unlock it."
    ) in page
    assert 'href="/static/css/app.css"' in page  # in the app's own style


def test_a_few_mistakes_do_not_lock(client: Client, owner: User) -> None:
    hammer(client, owner.username, times=4)
    attempt(client, owner.username, PASSWORD)
    assert signed_in(client)


def test_the_lock_is_per_username_and_address(owner: User, teammate: User) -> None:
    attacker = Client()
    hammer(attacker, owner.username)
    # The same user from another address signs in.
    elsewhere = Client()
    attempt(elsewhere, owner.username, PASSWORD, address="10.0.0.8")
    assert signed_in(elsewhere)
    # Another user from the attacker's address signs in.
    same_address = Client()
    attempt(same_address, teammate.username, PASSWORD)
    assert signed_in(same_address)


def test_a_forged_forwarded_for_header_does_not_dodge_the_lock(client: Client, owner: User) -> None:
    for n in range(60):
        attempt(client, owner.username, "wrong", HTTP_X_FORWARDED_FOR=f"198.51.100.{n}")
    attempt(client, owner.username, PASSWORD, HTTP_X_FORWARDED_FOR="203.0.113.1")
    assert not signed_in(client)


def test_behind_a_trusted_proxy_the_forwarded_address_counts(settings, owner: User) -> None:  # type: ignore[no-untyped-def]
    settings.REELHOUSE_PROXY_COUNT = 1
    proxy = "10.0.0.1"  # every request arrives from the proxy
    locked = Client()
    for _ in range(10):
        attempt(locked, owner.username, "wrong", address=proxy, HTTP_X_FORWARDED_FOR="forged, 198.51.100.9")
    attempt(locked, owner.username, PASSWORD, address=proxy, HTTP_X_FORWARDED_FOR="198.51.100.9")
    assert not signed_in(locked)
    other = Client()
    attempt(other, owner.username, PASSWORD, address=proxy, HTTP_X_FORWARDED_FOR="198.51.100.10")
    assert signed_in(other)
    assert AccessAttempt.objects.get().ip_address == "198.51.100.9"


def test_the_admin_sign_in_is_throttled_too(client: Client) -> None:
    root = User.objects.create_superuser("root", password="pw-root-123456")
    hammer(client, root.username, url=ADMIN_SIGN_IN)
    response = attempt(client, root.username, "pw-root-123456", url=ADMIN_SIGN_IN)
    assert response.status_code == 429
    assert not signed_in(client)
    assert "Too many failed sign-ins" in response.content.decode()


def test_an_admin_unlocks_in_the_admin(client: Client, owner: User) -> None:
    hammer(client, owner.username)
    root = User.objects.create_superuser("root", password="pw-root-123456")
    admin = Client()
    admin.force_login(root)
    changelist = reverse("admin:axes_accessattempt_changelist")
    assert owner.username in admin.get(changelist).content.decode()
    attempt_row = AccessAttempt.objects.get(username=owner.username)
    response = admin.post(
        reverse("admin:axes_accessattempt_delete", args=[attempt_row.pk]), {"post": "yes"}
    )
    assert response.status_code == 302
    attempt(client, owner.username, PASSWORD)
    assert signed_in(client)


def test_an_admin_unlocks_from_the_command_line(client: Client, owner: User) -> None:
    hammer(client, owner.username)
    call_command("axes_reset_username", owner.username)
    attempt(client, owner.username, PASSWORD)
    assert signed_in(client)


def test_the_test_clients_login_still_works(client: Client, owner: User) -> None:
    assert client.login(username=owner.username, password=PASSWORD)
    assert not client.login(username=owner.username, password="wrong")


@pytest.mark.parametrize("minutes", ["1", "90"])
def test_the_message_names_the_configured_cool_off(client: Client, owner: User, settings, minutes: str) -> None:  # type: ignore[no-untyped-def]
    from datetime import timedelta

    settings.AXES_COOLOFF_TIME = timedelta(minutes=int(minutes))
    hammer(client, owner.username, times=6)
    response = attempt(client, owner.username, PASSWORD)
    assert f"Try again in {minutes} minute" in response.content.decode()
