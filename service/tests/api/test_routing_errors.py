"""Every routing error under /api/v1/ is the contract's JSON error body (issue 18 item 8)."""

from django.test import TestCase


class RoutingErrorsTestCase(TestCase):
    def assertJsonError(self, response, status: int, code: str):
        self.assertEqual(response.status_code, status, response.content)
        self.assertEqual(response["Content-Type"], "application/json")
        body = response.json()
        self.assertEqual(set(body), {"error"})
        self.assertEqual(body["error"]["code"], code)
        self.assertTrue(body["error"]["message"])
        return body["error"]["message"]

    def test_an_unknown_path_is_a_json_404(self):
        for path in ["/api/v1/nope", "/api/v1/sign/", "/api/v1/clients/7"]:
            with self.subTest(path=path):
                message = self.assertJsonError(self.client.get(path), 404, "not_found")
                self.assertIn(path, message)

    def test_a_wrong_method_is_a_json_405_that_says_which_are_allowed(self):
        response = self.client.delete("/api/v1/sign")

        message = self.assertJsonError(response, 405, "method_not_allowed")
        self.assertEqual(response["Allow"], "POST")
        self.assertEqual(message, "/api/v1/sign does not take DELETE; it takes POST.")
        self.assertJsonError(self.client.post("/api/v1/version"), 405, "method_not_allowed")

    def test_the_apis_own_json_404_is_left_alone(self):
        response = self.client.post(
            "/api/v1/sign", {}, content_type="application/json", headers={"Authorization": "x"}
        )
        self.assertNotEqual(response.status_code, 404)  # refused for its token, in JSON
        self.assertEqual(response["Content-Type"], "application/json; charset=utf-8")

    def test_pages_outside_the_api_keep_their_html_404(self):
        response = self.client.get("/no-such-page/")
        self.assertNotEqual(response.get("Content-Type"), "application/json")
