"""The client API answers every routing error in its own error form.

Django answers an unknown path with its 404 page and ninja a wrong method with an empty 405;
under ``/api/v1/`` a client (and the OpenAPI contract) expects ``{"error": {"code",
"message"}}`` for every refusal, so such answers are rewritten here, keeping ``Allow``.
"""

from __future__ import annotations

from django.http import JsonResponse

API_PREFIX = "/api/v1/"
ROUTING_ERRORS = {
    404: ("not_found", "There is no {path} in the client API (see /api/v1/docs)."),
    405: ("method_not_allowed", "{path} does not take {method}; it takes {allowed}."),
}


class ApiRoutingErrorsMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if not request.path.startswith(API_PREFIX) or response.status_code not in ROUTING_ERRORS:
            return response
        if response.get("Content-Type", "").startswith("application/json"):
            return response  # the API's own answer (an unknown identity is a JSON 404)
        code, template = ROUTING_ERRORS[response.status_code]
        allowed = response.get("Allow", "")
        message = template.format(path=request.path, method=request.method, allowed=allowed)
        rewritten = JsonResponse(
            {"error": {"code": code, "message": message}}, status=response.status_code
        )
        if allowed:
            rewritten["Allow"] = allowed
        return rewritten
