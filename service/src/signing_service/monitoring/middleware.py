"""The client API's latency, per route, for ``signing_service_api_request_duration_seconds``."""

from __future__ import annotations

import time

from signing_service.accounts.middleware import TOKEN_AUTHENTICATED_PREFIXES
from signing_service.monitoring.metrics import API_LATENCY


class ApiLatencyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not request.path.startswith(TOKEN_AUTHENTICATED_PREFIXES):
            return self.get_response(request)
        started = time.perf_counter()
        response = self.get_response(request)
        match = request.resolver_match
        route = match.route if match else "unmatched"  # never the raw path: unbounded labels
        API_LATENCY.labels(route, request.method).observe(time.perf_counter() - started)
        return response
