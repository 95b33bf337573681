"""Response headers that Django's SecurityMiddleware does not set."""

from django.conf import settings
from django.utils.cache import patch_cache_control


class ContentSecurityPolicyMiddleware:
    """Send the Content-Security-Policy header: only our own scripts and styles, no inline code."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", settings.CONTENT_SECURITY_POLICY)
        return response


class NoStoreMiddleware:
    """``Cache-Control: no-store`` on every response Django makes (static files are served
    before this, by WhiteNoise): pages show audit records, identities, users and clients, and
    API answers carry client tokens and signatures; no browser or proxy cache may keep them.
    A view that chose its own caching keeps it."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if "Cache-Control" not in response.headers:
            patch_cache_control(response, no_store=True)
        return response
