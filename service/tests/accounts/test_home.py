from django.test import override_settings

from signing_service.test import BaseTestCase


class HomeTestCase(BaseTestCase):
    def test_it_shows_the_service_url_to_copy(self):
        self.client.force_login(self.bob)
        response = self.client.get("/", secure=True)
        self.assertContains(response, 'id="service-url"')
        self.assertContains(response, 'value="https://testserver"')
        self.assertContains(response, 'data-copy="service-url"')

    @override_settings(PUBLIC_URL="https://signing.example.com")
    def test_it_shows_the_configured_public_url(self):
        self.client.force_login(self.bob)
        self.assertContains(self.client.get("/"), 'value="https://signing.example.com"')

    def test_it_links_to_the_api_keys(self):
        self.client.force_login(self.bob)
        response = self.client.get("/")
        self.assertContains(response, 'href="/api-keys/"')
        self.assertEqual(self.client.get("/api-keys/").status_code, 200)

    def test_the_nav_shows_admin_pages_to_admins_only(self):
        self.client.force_login(self.alice)
        self.assertContains(self.client.get("/"), 'href="/accounts/users/"')
        self.client.force_login(self.bob)
        response = self.client.get("/")
        self.assertNotContains(response, 'href="/accounts/users/"')
        self.assertNotContains(response, 'href="/audit/"')
        self.assertContains(response, 'href="/api/"')


class SecurityHeadersTestCase(BaseTestCase):
    def test_pages_carry_csp_hsts_and_frame_denial(self):
        response = self.client.get("/accounts/login/", secure=True)
        csp = response["Content-Security-Policy"]
        self.assertIn("script-src 'self'", csp)
        self.assertNotIn("unsafe-inline", csp)
        self.assertIn("max-age=", response["Strict-Transport-Security"])
        self.assertEqual(response["X-Frame-Options"], "DENY")
        self.assertEqual(response["X-Content-Type-Options"], "nosniff")

    def test_templates_hold_no_inline_script(self):
        self.client.force_login(self.alice)
        for path in ["/", "/accounts/users/", "/accounts/users/add/", "/api/", "/identities/"]:
            body = self.client.get(path).content.decode()
            self.assertRegex(body, r'<script src="/static/', path)
            self.assertNotRegex(body, r"<script(?![^>]*\bsrc=)", path)
            self.assertNotRegex(body, r"<[^>]+\son[a-z]+=", path)

    def test_cookies_are_secure_httponly_and_strict(self):
        self.client.post(
            "/accounts/login/", {"username": "alice", "password": "correct horse battery staple"}
        )
        for name in ["signing_session", "signing_csrf"]:
            cookie = self.client.cookies[name]
            self.assertTrue(cookie["secure"], name)
            self.assertTrue(cookie["httponly"], name)
            self.assertEqual(cookie["samesite"], "Strict", name)
