"""Response headers that Django's SecurityMiddleware does not set."""

from django.conf import settings


class ContentSecurityPolicyMiddleware:
    """Send the Content-Security-Policy header: only our own scripts and styles, no inline code."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", settings.CONTENT_SECURITY_POLICY)
        return response
