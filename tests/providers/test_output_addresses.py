"""Outputs are fetched only from public addresses, judged at connect time on every hop.

No test here sends a packet beyond loopback: private and metadata addresses are made to look
reachable with a fake resolver, and ``outside_connects`` proves nothing tried to reach them.
"""

from __future__ import annotations

import io
import ipaddress
import threading

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from workspace.providers.addresses import (
    OutputPolicy,
    OutputRefused,
    address_is_public,
    parse_private_hosts,
)
from workspace.providers.errors import ErrorClass, ProviderError
from workspace.providers.http import ProviderHTTP
from workspace.providers.models import Channel

from .stand_in import Answer, StandIn, fake_dns

FILE = b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 100


def classify(response):  # type: ignore[no-untyped-def]
    return ProviderError(ErrorClass.PROVIDER_FAILED, f"HTTP {response.status_code}")


def http_for(base: StandIn, private_output_hosts: str = "") -> ProviderHTTP:
    return ProviderHTTP(
        base_url=base.url + "/v1",
        headers={"Authorization": "Bearer sk-secret-key"},
        secret="sk-secret-key",
        classify=classify,
        connect_timeout=2,
        read_timeout=2,
        private_output_hosts=private_output_hosts,
    )


def fetch(http: ProviderHTTP, url: str, *, max_bytes: int = 10_000) -> bytes:
    sink = io.BytesIO()
    http.download_url(url, destination=sink, timeout=2, max_bytes=max_bytes)
    return sink.getvalue()


def refused(http: ProviderHTTP, url: str) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        fetch(http, url)
    assert caught.value.error_class is ErrorClass.PROVIDER_FAILED
    assert not caught.value.transient
    return caught.value


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1", "127.8.9.10", "10.0.0.5", "172.16.3.4", "192.168.1.1", "169.254.169.254",
        "100.64.0.1", "100.127.255.254", "0.0.0.0",  # noqa: S104
        "224.0.0.1", "239.255.255.250", "240.0.0.1",
        "255.255.255.255", "192.0.2.1", "198.18.0.1",
        "::1", "::", "fc00::1", "fd12:3456::1", "fe80::1", "fec0::1", "ff02::1",
        "::ffff:127.0.0.1", "::ffff:10.0.0.5", "::ffff:169.254.169.254",
        "2002:7f00:1::", "64:ff9b::a9fe:a9fe", "2001:db8::1",
    ],
)
def test_internal_addresses_are_not_public(address: str) -> None:
    assert not address_is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "address", ["8.8.8.8", "1.1.1.1", "151.101.1.69", "2606:4700:4700::1111", "::ffff:8.8.8.8"]
)
def test_public_addresses_are(address: str) -> None:
    assert address_is_public(ipaddress.ip_address(address))


def test_a_channel_may_allow_private_hosts_by_name_address_or_range() -> None:
    names, _networks = parse_private_hosts("files.internal, 10.0.0.5\n10.1.0.0/16  fd00::/8")
    assert names == {"files.internal"}
    policy = OutputPolicy.for_channel(trusted=[], private_output_hosts="10.0.0.5 10.1.0.0/16")
    assert policy.allows(ipaddress.ip_address("10.0.0.5"))
    assert policy.allows(ipaddress.ip_address("10.1.200.3"))
    assert not policy.allows(ipaddress.ip_address("10.0.0.6"))
    assert policy.allows(ipaddress.ip_address("93.184.216.34"))


@pytest.mark.parametrize("entry", ["foo_bar!", "http://files.internal/", "10.0.0.0/33", "999.1.1.1"])
def test_a_bad_entry_is_refused_with_a_clear_message(db, entry: str) -> None:  # type: ignore[no-untyped-def]
    channel = Channel(slug="gw", name="Gateway", private_output_hosts=f"files.internal {entry}")
    with pytest.raises(ValidationError) as caught:
        channel.full_clean()
    message = " ".join(caught.value.message_dict["private_output_hosts"])
    assert f"“{entry}” is neither a host name, an IP address nor a CIDR range" in message


def test_the_admin_shows_and_saves_the_setting(client, db) -> None:  # type: ignore[no-untyped-def]
    from django.contrib.auth.models import User

    User.objects.create_superuser("root", "root@example.com", "pw-root-123456")
    client.login(username="root", password="pw-root-123456")
    channel = Channel.objects.create(slug="gw", name="Gateway")
    url = reverse("admin:providers_channel_change", args=[channel.pk])
    page = client.get(url).content.decode()
    assert 'name="private_output_hosts"' in page
    assert "self-hosted gateways whose files live on a private network" in page
    data = {
        "name": "Gateway", "slug": "gw", "protocol": channel.protocol, "base_url": "",
        "is_active": "on", "api_key_env": channel.api_key_env, "requests_per_minute": 50,
        "creates_per_minute": "", "max_in_flight": 20, "member_max_in_flight": 5,
        "member_max_queued": 200, "max_takes": 4, "webhook_secret_env": "",
    }
    bad = client.post(url, {**data, "private_output_hosts": "files.internal, not a host!"})
    assert bad.status_code == 200
    assert "is neither a host name, an IP address nor a CIDR range" in bad.content.decode()
    good = client.post(url, {**data, "private_output_hosts": "files.internal, 10.0.0.0/8"})
    assert good.status_code == 302
    assert Channel.objects.get(pk=channel.pk).private_output_hosts == "files.internal, 10.0.0.0/8"


# --- At connect time ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("resolved", "shown"),
    [
        (["10.0.0.5"], "10.0.0.5"),
        (["169.254.169.254"], "169.254.169.254"),
        (["100.64.1.2"], "100.64.1.2"),
        (["fd00::5"], "fd00::5"),
        # One public answer does not excuse an internal one: the name is refused outright.
        (["93.184.216.34", "10.0.0.5"], "10.0.0.5"),
    ],
)
def test_a_name_resolving_to_an_internal_address_is_refused_before_connecting(
    monkeypatch, stand_ins, outside_connects, resolved, shown
) -> None:  # type: ignore[no-untyped-def]
    fake_dns(monkeypatch, {"files.hostile.test": resolved})
    http = http_for(stand_ins())
    error = refused(http, "http://files.hostile.test/out.mp4")
    assert error.message == (
        f"The provider pointed at a private address ({shown}); outputs are fetched only from "
        "public addresses. An admin can allow this host on the channel."
    )
    assert outside_connects == []


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "http://10.0.0.5:8080/admin",
        "http://[fd00::1]/x",
        "http://[::ffff:169.254.169.254]/x",
        "https://0.0.0.0/x",
    ],
)
def test_internal_address_literals_are_refused_before_connecting(
    stand_ins, outside_connects, url
) -> None:  # type: ignore[no-untyped-def]
    error = refused(http_for(stand_ins()), url)
    assert "outputs are fetched only from public addresses" in error.message
    assert outside_connects == []


def test_another_loopback_service_is_refused_and_never_reached(stand_ins) -> None:  # type: ignore[no-untyped-def]
    base, internal = stand_ins(), stand_ins()
    internal.route("GET", "/secret", Answer(200, FILE))
    http = http_for(base)
    for url in (
        f"{internal.url}/secret",
        f"http://localhost:{internal.port}/secret",
        f"http://[::ffff:127.0.0.1]:{internal.port}/secret",
    ):
        message = refused(http, url).message
        assert message.startswith("The provider pointed at a private address (")
        assert "127.0.0.1)" in message
    assert internal.requests == []


def test_a_redirect_to_an_internal_address_is_refused_at_that_hop(
    monkeypatch, stand_ins, outside_connects
) -> None:  # type: ignore[no-untyped-def]
    base, internal = stand_ins(), stand_ins()
    internal.route("GET", "/secret", Answer(200, FILE))
    base.route("GET", "/cdn/to-internal", Answer.redirect(f"{internal.url}/secret"))
    base.route("GET", "/cdn/to-metadata", Answer.redirect("http://169.254.169.254/latest/"))
    base.route("GET", "/cdn/to-rebound", Answer.redirect("http://rebound.hostile.test/x"))
    fake_dns(monkeypatch, {"rebound.hostile.test": ["127.0.0.1"]})
    http = http_for(base)
    for path in ("to-internal", "to-metadata", "to-rebound"):
        assert "outputs are fetched only from public addresses" in refused(
            http, f"{base.url}/cdn/{path}"
        ).message
    assert internal.requests == []
    assert outside_connects == []
    assert [seen.path for seen in base.requests] == [
        "/cdn/to-internal", "/cdn/to-metadata", "/cdn/to-rebound"
    ]


def test_files_on_the_base_urls_own_origin_are_trusted(stand_ins) -> None:  # type: ignore[no-untyped-def]
    base = stand_ins()
    base.route("GET", "/cdn/video.mp4", Answer(200, FILE, {"Content-Type": "video/mp4"}))
    base.route("GET", "/cdn/hop", Answer.redirect("/cdn/video.mp4"))
    http = http_for(base)
    assert fetch(http, f"{base.url}/cdn/video.mp4") == FILE
    assert fetch(http, f"{base.url}/cdn/hop") == FILE
    # Only under the base path does the key go along; the rest of the origin gets no key.
    assert all("authorization" not in seen.headers for seen in base.requests)


@pytest.mark.parametrize("allowed", ["127.0.0.1", "127.0.0.0/8", "files.internal"])
def test_hosts_the_channel_lists_may_be_private(monkeypatch, stand_ins, allowed) -> None:  # type: ignore[no-untyped-def]
    base, files = stand_ins(), stand_ins()
    files.route("GET", "/out.mp4", Answer(200, FILE))
    fake_dns(monkeypatch, {"files.internal": ["127.0.0.1"]})
    http = http_for(base, private_output_hosts=f"10.9.9.9, {allowed}")
    assert fetch(http, f"http://files.internal:{files.port}/out.mp4") == FILE
    assert len(files.requests) == 1
    # ...and only those.
    other = http_for(base, private_output_hosts="10.9.9.9")
    refused(other, f"http://files.internal:{files.port}/out.mp4")
    assert len(files.requests) == 1


def test_a_body_declared_too_big_is_refused_before_reading_it(stand_ins) -> None:  # type: ignore[no-untyped-def]
    base = stand_ins()
    release = threading.Event()

    def stalling(size: int):  # type: ignore[no-untyped-def]
        yield b"\x00" * size
        release.wait(10)  # a reader still waiting for more would hit its read timeout

    base.route("GET", "/cdn/declared", lambda _seen: Answer(
        200, stalling(10), {"Content-Length": str(10**12)}))
    base.route("GET", "/cdn/streamed", lambda _seen: Answer(200, stalling(70_000), {}))
    http = http_for(base)
    try:
        for path in ("declared", "streamed"):
            with pytest.raises(ProviderError) as caught:
                fetch(http, f"{base.url}/cdn/{path}", max_bytes=1000)
            assert caught.value.error_class is ErrorClass.PROVIDER_FAILED, path
            assert "more than 1000 bytes" in caught.value.message
    finally:
        release.set()


def test_the_policy_is_checked_for_every_output_url_not_just_the_first(stand_ins) -> None:  # type: ignore[no-untyped-def]
    base, internal = stand_ins(), stand_ins()
    base.route("GET", "/cdn/ok.mp4", Answer(200, FILE))
    http = http_for(base)
    assert fetch(http, f"{base.url}/cdn/ok.mp4") == FILE
    refused(http, f"{internal.url}/x")
    assert fetch(http, f"{base.url}/cdn/ok.mp4") == FILE
    assert internal.requests == []


def test_refusal_is_an_exception_the_http_layer_turns_into_a_plain_reason() -> None:
    policy = OutputPolicy.for_channel(trusted=[("127.0.0.1", 1)], private_output_hosts="")
    assert policy.skips_check("127.0.0.1", 1) and not policy.skips_check("127.0.0.1", 2)
    with pytest.raises(OutputRefused):
        policy.vet("127.0.0.1", 2)
