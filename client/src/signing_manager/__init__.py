"""Signing Manager: a client of the Signing Service."""

from importlib.metadata import version

__version__ = version("signing-manager")
__all__ = ["__version__"]
