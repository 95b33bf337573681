"""Signing Manager: a client of the Signing Service."""

__all__ = ["__version__"]


def __getattr__(name: str) -> str:
    # The version is looked up when first asked for: importing importlib.metadata takes a
    # tenth of a second, which commands that never ask (pkgutil) would pay at every start.
    if name != "__version__":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib.metadata import version

    globals()["__version__"] = found = version("signing-manager")
    return found
