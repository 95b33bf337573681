"""WSGI entry point, served by gunicorn from ``signing-service run``."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "signing_service.settings")

application = get_wsgi_application()
