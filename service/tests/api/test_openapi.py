"""The live OpenAPI document describes the wire contract of DESIGN.md, "Client API v1"."""

import re

from django.test import TestCase

# (method, path) -> whether it needs a bearer token.
CONTRACT = {
    ("get", "/api/v1/version"): False,
    ("post", "/api/v1/clients"): True,
    ("get", "/api/v1/certificates"): True,
    ("post", "/api/v1/sign"): True,
    ("post", "/api/v1/sign/batch"): True,
}
ALGORITHMS = {
    "rsa-pkcs1v15-sha1",
    "rsa-pkcs1v15-sha256",
    "rsa-pkcs1v15-sha384",
    "rsa-pkcs1v15-sha512",
    "rsa-pss-sha256",
    "rsa-pss-sha384",
    "rsa-pss-sha512",
    "ecdsa-sha256",
    "ecdsa-sha384",
    "ecdsa-sha512",
}


class OpenApiTestCase(TestCase):
    def setUp(self):
        response = self.client.get("/api/v1/openapi.json")
        self.assertEqual(response.status_code, 200)
        self.document = response.json()

    def resolve(self, schema: dict) -> dict:
        while "$ref" in schema:
            name = schema["$ref"].removeprefix("#/components/schemas/")
            schema = self.document["components"]["schemas"][name]
        return schema

    def operation(self, method: str, path: str) -> dict:
        return self.document["paths"][path][method]

    def request_schema(self, method: str, path: str) -> dict:
        body = self.operation(method, path)["requestBody"]["content"]["application/json"]
        return self.resolve(body["schema"])

    def response_schema(self, method: str, path: str, status: str) -> dict:
        content = self.operation(method, path)["responses"][status]["content"]
        return self.resolve(content["application/json"]["schema"])

    def test_it_is_served_without_a_token_as_openapi_3(self):
        self.assertTrue(self.document["openapi"].startswith("3."))

    def test_it_lists_every_path_of_the_contract_and_no_other(self):
        operations = {
            (method, path) for path, methods in self.document["paths"].items() for method in methods
        }
        self.assertEqual(operations, set(CONTRACT))

    def test_every_call_but_version_needs_a_bearer_token(self):
        schemes = self.document["components"]["securitySchemes"]
        for (method, path), needs_token in CONTRACT.items():
            with self.subTest(path=path):
                security = self.operation(method, path).get("security")
                if not needs_token:
                    self.assertFalse(security)
                    continue
                self.assertTrue(security)
                for requirement in security:
                    for name in requirement:
                        self.assertEqual(schemes[name], {"type": "http", "scheme": "bearer"})

    def test_the_algorithm_enum_is_the_contracts(self):
        sign_in = self.request_schema("post", "/api/v1/sign")
        algorithm = self.resolve(sign_in["properties"]["algorithm"])
        self.assertEqual(set(algorithm["enum"]), ALGORITHMS)
        self.assertEqual(len(algorithm["enum"]), len(ALGORITHMS))

    def test_the_request_bodies_have_the_contracts_fields(self):
        register = self.request_schema("post", "/api/v1/clients")
        self.assertEqual(
            set(register["properties"]), {"hostname", "os", "client_version", "machine_id"}
        )
        self.assertTrue({"hostname", "machine_id"} <= set(register["required"]))
        sign = self.request_schema("post", "/api/v1/sign")
        self.assertEqual(set(sign["properties"]), {"certificate", "algorithm", "digest"})
        self.assertEqual(set(sign["required"]), {"certificate", "algorithm", "digest"})
        batch = self.request_schema("post", "/api/v1/sign/batch")
        self.assertEqual(set(batch["properties"]), {"requests"})
        self.assertEqual(batch["properties"]["requests"]["maxItems"], 1000)
        self.assertEqual(self.resolve(batch["properties"]["requests"]["items"]), sign)

    def test_the_responses_have_the_contracts_fields(self):
        register = self.response_schema("post", "/api/v1/clients", "201")
        self.assertEqual(set(register["properties"]), {"client_id", "client_token"})
        listing = self.response_schema("get", "/api/v1/certificates", "200")
        item = self.resolve(listing["properties"]["certificates"]["items"])
        self.assertEqual(
            set(item["properties"]),
            {
                "sha1",
                "sha256",
                "common_name",
                "certificate",
                "chain",
                "key_type",
                "key_size",
                "not_after",
                "key_location",
            },
        )
        # An addition to the contract: optional, so a client of the first version is served.
        self.assertNotIn("key_location", item.get("required", []))
        sign = self.response_schema("post", "/api/v1/sign", "200")
        self.assertEqual(set(sign["properties"]), {"signature"})
        batch = self.response_schema("post", "/api/v1/sign/batch", "200")
        result = self.resolve(batch["properties"]["results"]["items"])
        self.assertEqual(set(result["properties"]), {"signature", "error"})

    def test_errors_are_described_in_the_contracts_form(self):
        for (method, path), needs_token in CONTRACT.items():
            if not needs_token:
                continue
            for status in ("401", "403", "422"):
                with self.subTest(path=path, status=status):
                    error = self.response_schema(method, path, status)
                    self.assertEqual(set(error["properties"]), {"error"})
                    detail = self.resolve(error["properties"]["error"])
                    self.assertEqual(set(detail["properties"]), {"code", "message"})
        for method, path, status in [
            ("post", "/api/v1/clients", "409"),
            ("post", "/api/v1/sign", "404"),
        ]:
            with self.subTest(path=path, status=status):
                self.assertIn(status, self.operation(method, path)["responses"])

    def test_the_sign_request_states_its_limits(self):
        # Issue 18 item 8: a request that fits the document must not be refused for its form.
        sign = self.request_schema("post", "/api/v1/sign")["properties"]
        certificate, digest = sign["certificate"], sign["digest"]
        self.assertEqual(digest["format"], "byte")
        self.assertEqual((digest["minLength"], digest["maxLength"]), (28, 88))
        for good in ["ab" * 20, "AB:" * 31 + "AB", " " + "0" * 64 + " "]:
            self.assertTrue(re.search(certificate["pattern"], good), good)
        for bad in ["ab" * 19, "ab" * 21, "xy" * 20, "ab" * 20 + "::"]:
            self.assertFalse(re.search(certificate["pattern"], bad), bad)
        self.assertTrue(re.search(digest["pattern"], "A" * 43 + "="))
        self.assertFalse(re.search(digest["pattern"], "A" * 43))  # padding is part of base64

    def test_client_names_state_what_they_refuse(self):
        register = self.request_schema("post", "/api/v1/clients")["properties"]
        self.assertIn("\\x00-\\x1f", register["hostname"]["pattern"])
