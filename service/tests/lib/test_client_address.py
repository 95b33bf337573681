"""The client's address: the socket's, or behind trusted proxies the entry they appended to
X-Forwarded-For (issue 18 item 2); a forged header changes nothing."""

import pytest
from django.test import RequestFactory, override_settings

from signing_service.client_address import client_address

PROXY, CLIENT, FORGED = "127.0.0.1", "203.0.113.5", "198.51.100.66"


def address(forwarded: str | None, remote: str = PROXY, **settings) -> str | None:
    meta = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        meta["HTTP_X_FORWARDED_FOR"] = forwarded
    options = {"BEHIND_PROXY": True, "TRUSTED_PROXIES": [PROXY], "PROXY_COUNT": 1, **settings}
    with override_settings(**options):
        return client_address(RequestFactory().get("/", **meta))


@pytest.mark.parametrize(
    ("forwarded", "remote", "settings", "expected"),
    [
        (CLIENT, PROXY, {}, CLIENT),
        (f"{FORGED}, {CLIENT}", PROXY, {}, CLIENT),  # the client wrote the left part
        (f"{FORGED}, {CLIENT}, 10.0.0.2", PROXY, {"PROXY_COUNT": 2}, CLIENT),
        (CLIENT, "192.0.2.1", {}, "192.0.2.1"),  # not from a trusted proxy
        (CLIENT, "10.1.2.3", {"TRUSTED_PROXIES": ["10.0.0.0/8"]}, CLIENT),
        (CLIENT, "192.0.2.1", {"TRUSTED_PROXIES": ["*"]}, CLIENT),
        (None, PROXY, {}, PROXY),
        ("", PROXY, {}, PROXY),
        ("not-an-address", PROXY, {}, PROXY),
        (CLIENT, PROXY, {"PROXY_COUNT": 2}, PROXY),  # fewer entries than proxies
        (f" {CLIENT} ,", PROXY, {}, CLIENT),
        ("2001:db8::1", "::1", {"TRUSTED_PROXIES": ["::1"]}, "2001:db8::1"),
        (CLIENT, PROXY, {"BEHIND_PROXY": False}, PROXY),  # served directly: the socket's
    ],
)
def test_the_address_is_the_one_the_trusted_proxies_saw(forwarded, remote, settings, expected):
    assert address(forwarded, remote, **settings) == expected
