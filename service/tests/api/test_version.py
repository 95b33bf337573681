from django.test import TestCase

import signing_service


class VersionTestCase(TestCase):
    def test_it_answers_without_authentication(self):
        response = self.client.get("/api/v1/version")
        self.assertEqual(response.status_code, 200)
        self.assertEqual(
            response.json(),
            {"service_version": signing_service.__version__, "api_version": 1},
        )

    def test_it_is_described_in_the_openapi_document(self):
        document = self.client.get("/api/v1/openapi.json").json()
        self.assertIn("/api/v1/version", document["paths"])
