"""The ``signing-manager`` command line."""

from __future__ import annotations

import argparse

from signing_manager import __version__


def build_parser() -> argparse.ArgumentParser:
    return argparse.ArgumentParser(
        prog="signing-manager",
        description="Sign macOS code and installer packages with identities kept in a "
        "Signing Service.",
    )


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    parser.add_argument("--version", action="version", version=f"signing-manager {__version__}")
    parser.parse_args(argv)
    parser.print_help()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
