"""Nothing is reachable before signing in, changing the first password and accepting the terms."""

from __future__ import annotations

from django.contrib.auth import middleware as auth_middleware
from django.shortcuts import redirect
from django.urls import reverse

# The client API authenticates with bearer tokens, not sessions; it does its own checks.
TOKEN_AUTHENTICATED_PREFIXES = ("/api/v1/",)


class LoginRequiredMiddleware(auth_middleware.LoginRequiredMiddleware):
    """Django's fail-closed login requirement, minus the token-authenticated client API."""

    def process_view(self, request, view_func, view_args, view_kwargs):
        if request.path.startswith(TOKEN_AUTHENTICATED_PREFIXES):
            return None
        return super().process_view(request, view_func, view_args, view_kwargs)


class AccountSetupMiddleware:
    """Send a signed-in user to the password change, then to the agreement, until both are done."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        step = self.pending_step(request)
        if step and request.path not in {reverse(step), reverse("accounts:logout")}:
            return redirect(step)
        return self.get_response(request)

    @staticmethod
    def pending_step(request) -> str | None:
        user = request.user
        if not user.is_authenticated or request.path.startswith(TOKEN_AUTHENTICATED_PREFIXES):
            return None
        if user.must_change_password:
            return "accounts:password_change"
        if not user.has_accepted_current_agreement():
            return "accounts:agreement"
        return None
