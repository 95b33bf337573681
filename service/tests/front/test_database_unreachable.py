"""Pages while the database is unreachable: a 503 page that says so (with Retry-After), not
Django's generic 500, wherever the fault comes from (the session, the user, the view); the client
API's JSON 503 even when the fault happens before the API's own handler; a 500 stays a 500."""

from unittest import mock

from django.db import OperationalError, connection
from django.test import Client

from signing_service.test import PASSWORD, BaseTestCase


def refuse_tables(*tables: str):
    """An execute wrapper failing every statement that names one of ``tables``."""

    def wrapper(execute, sql, params, many, context):
        if any(f'"{table}"' in sql for table in tables):
            raise OperationalError("connection to server at 127.0.0.1 failed (test)")
        return execute(sql, params, many, context)

    return wrapper


class DatabaseUnreachableTestCase(BaseTestCase):
    def setUp(self):
        self.client = Client(raise_request_exception=False)

    def assertUnreachablePage(self, response):
        self.assertEqual(response.status_code, 503)
        self.assertEqual(response["Retry-After"], "5")
        self.assertContains(response, "The database is unreachable", status_code=503)
        self.assertNotContains(response, "Server error", status_code=503)

    def test_signing_in_while_the_user_table_fails(self):
        with (
            connection.execute_wrapper(refuse_tables("accounts_user")),
            self.assertLogs("signing_service.database", "ERROR") as logged,
        ):
            response = self.client.post(
                "/accounts/login/", {"username": "alice", "password": PASSWORD}
            )
        self.assertUnreachablePage(response)
        self.assertIn("The database failed during POST /accounts/login/", logged.output[0])

    def test_a_signed_in_page_while_the_session_table_fails(self):
        self.client.force_login(self.alice)
        for path in ["/", "/audit/", "/identities/"]:
            with self.subTest(path), connection.execute_wrapper(refuse_tables("django_session")):
                self.assertUnreachablePage(self.client.get(path))

    def test_a_view_whose_own_query_fails(self):
        self.client.force_login(self.alice)
        with connection.execute_wrapper(refuse_tables("audit_auditevent")):
            self.assertUnreachablePage(self.client.get("/audit/"))

    def test_the_api_answers_json_even_for_a_fault_outside_its_handlers(self):
        failing = mock.patch(
            "signing_service.api.middleware.ApiRoutingErrorsMiddleware.__call__",
            side_effect=OperationalError("server closed the connection unexpectedly"),
        )
        with failing:
            response = self.client.get("/api/v1/version")
        self.assertEqual(response.status_code, 503)
        self.assertEqual(response["Retry-After"], "5")
        self.assertEqual(response.json()["error"]["code"], "service_unavailable")

    def test_any_other_error_is_still_the_500_page(self):
        self.client.force_login(self.alice)
        with mock.patch("signing_service.views.render", side_effect=RuntimeError("bug")):
            response = self.client.get("/")
        self.assertEqual(response.status_code, 500)
        self.assertContains(response, "Server error", status_code=500)
        self.assertFalse(response.has_header("Retry-After"))
