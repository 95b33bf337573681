"""WSGI entry point, served by gunicorn from ``signing-service run``."""

import io
import os

from django.conf import settings
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "signing_service.settings")


def with_chunked_api_bodies(app):
    """gunicorn decodes a chunked request body, but without a Content-Length Django reads it as
    empty (a sign request then reads as "body: Field required"). For the client API, read the
    body here, at most one byte past Django's limit so that an oversize one is still refused
    with 413, and tell Django its length."""

    def application(environ, start_response):
        chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        api = environ.get("PATH_INFO", "").startswith("/api/v1/")
        if chunked and api and not environ.get("CONTENT_LENGTH"):
            body = environ["wsgi.input"].read(settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
        return app(environ, start_response)

    return application


application = with_chunked_api_bodies(get_wsgi_application())
