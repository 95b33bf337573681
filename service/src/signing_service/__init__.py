"""Signing Service: a Django project that keeps code-signing identities."""

from importlib.metadata import version

__version__ = version("signing-service")
