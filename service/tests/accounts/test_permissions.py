"""The guide's permission matrix, walked over every page the service has.

Each page either declares the permission it needs (``permission_required``) or is one of the few
pages open to every signed-in user. A new page that does neither fails this test.
"""

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID
from django.urls import URLPattern, URLResolver, get_resolver

from signing_service.access.models import ApiKey, Client
from signing_service.accounts.permissions import MATRIX, Permission, has_permission
from signing_service.audit.admin_actions import Actor
from signing_service.authorities.updates import add_authorities
from signing_service.identities.models import Identity, PendingIdentity
from signing_service.identities.p12 import parse_p12
from signing_service.test import (
    P12_PASSWORD,
    BaseTestCase,
    cached_key,
    make_identity,
    make_intermediate_ca,
)

# Public: the client package and the service's certificate, which build machines download;
# the probes and the metrics, for orchestrators and Prometheus (metrics need their own token:
# service/tests/monitoring).
PUBLIC = {
    "client_download",
    "client_download_latest",
    "service_certificate",
    "healthz",
    "readyz",
    "metrics",
}
OPEN_TO_EVERY_USER = PUBLIC | {
    "home",
    "accounts:login",
    "accounts:logout",
    "accounts:password_change",
    "accounts:agreement",
}
TOKEN_AUTHENTICATED_PREFIX = "api/v1/"

EXPECTED_NON_ADMIN = {
    Permission.VIEW_IDENTITIES,
    Permission.TOGGLE_IDENTITIES,
    Permission.VIEW_API_KEYS,
    Permission.TOGGLE_API_KEYS,
    Permission.VIEW_CLIENTS,
    Permission.TOGGLE_CLIENTS,
    Permission.VIEW_API_REFERENCE,
}


def pages(patterns=None, prefix="", namespace=""):
    """(route, qualified name, view) of every page, the client API excluded."""
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        route = prefix + str(pattern.pattern)
        if route.startswith(TOKEN_AUTHENTICATED_PREFIX):
            continue
        if isinstance(pattern, URLResolver):
            inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            yield from pages(pattern.url_patterns, route, inner)
        elif isinstance(pattern, URLPattern):
            yield route, namespace + (pattern.name or ""), pattern.callback


def pending_identity() -> PendingIdentity:
    """A key waiting for its certificate, as generating one in a token leaves it (the pages
    read only the record)."""
    key = cached_key("rsa2048")
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Pending")])
    csr = x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256())
    return PendingIdentity.objects.create(
        common_name="Pending",
        token_label="signing",
        token_key_id="00",
        key_type="RSA",
        key_size=2048,
        csr_der=csr.public_bytes(serialization.Encoding.DER),
    )


class PermissionMatrixTestCase(BaseTestCase):
    def setUp(self):
        identity = Identity()
        identity.fill_from(parse_p12(make_identity().p12, P12_PASSWORD))
        identity.save()
        key, _ = ApiKey.create("build machines")
        client = Client.objects.create(api_key=key, hostname="mac-1", token_id="0" * 10)
        (authority,) = add_authorities([make_intermediate_ca()[0]], Actor.operator())
        self.object_ids = {
            "identities:pending": pending_identity().pk,
            "identities:": identity.pk,
            "authorities:": authority.pk,
            "access:client": client.pk,
            "access:": key.pk,
            "accounts:": self.bob.pk,
        }

    def path_of(self, route: str, name: str) -> str:
        """A real URL for the route: existing objects' ids, an export's date range."""
        object_id = (
            next(pk for prefix, pk in self.object_ids.items() if name.startswith(prefix))
            if "<int:pk>" in route
            else None
        )
        path = "/" + route.replace("<int:pk>", str(object_id))
        path = path.replace("<str:filename>", "signing_manager-0.1.0-py3-none-any.whl")
        if name == "audit:export":
            path += "?date_from=2026-01-01&date_to=2026-12-31&format=csv"
        return path

    def test_the_matrix_is_the_guides(self):
        self.assertEqual(MATRIX["admin"], frozenset(Permission))
        self.assertEqual(MATRIX["user"], EXPECTED_NON_ADMIN)

    def test_deactivated_and_anonymous_users_hold_no_permission(self):
        self.client.logout()
        for permission in Permission:
            self.assertFalse(has_permission(self.charlie, permission))

    def test_every_page_declares_a_permission_or_is_open_to_every_user(self):
        for route, name, view in pages():
            with self.subTest(route):
                declared = getattr(view, "required_permission", None)
                self.assertTrue(declared or name in OPEN_TO_EVERY_USER, f"{name} declares none")

    def test_non_admins_get_403_exactly_where_the_matrix_says(self):
        self.client.force_login(self.bob)
        for route, name, view in pages():
            permission = getattr(view, "required_permission", None)
            if permission is None:
                continue
            allowed = permission in MATRIX["user"]
            for method in ("get", "post"):
                with self.subTest(route=route, method=method):
                    status = getattr(self.client, method)(self.path_of(route, name)).status_code
                    if allowed:
                        self.assertNotEqual(status, 403)
                    elif not (method == "get" and status == 405):
                        self.assertEqual(status, 403)

    def test_admins_may_open_every_page(self):
        self.client.force_login(self.alice)
        for route, name, _ in pages():
            if name == "accounts:login" or name in PUBLIC:
                continue  # login sends a signed-in visitor on; public files may be absent (404)
            with self.subTest(route):
                status = self.client.get(self.path_of(route, name)).status_code
                self.assertIn(status, {200, 405}, route)

    def test_anonymous_visitors_are_sent_to_the_login_page(self):
        for route, name, _ in pages():
            if name in {"accounts:login", "accounts:logout"} | PUBLIC:
                continue
            with self.subTest(route):
                response = self.client.get(self.path_of(route, name))
                self.assertEqual(response.status_code, 302)
                self.assertTrue(response["Location"].startswith("/accounts/login/"))

    def test_public_files_need_no_sign_in(self):
        for name in [
            "client/signing-service.pem",
            "client/signing_manager-9-py3-none-any.whl",
            "client/signing-manager.whl",
        ]:
            with self.subTest(name):
                self.assertEqual(self.client.get("/" + name).status_code, 404)
