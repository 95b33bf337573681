"""Filters every template has without ``{% load %}`` (settings: TEMPLATES' builtins)."""

from __future__ import annotations

import datetime

from django import template

register = template.Library()


@register.filter
def timestamp(moment: datetime.datetime | None) -> str:
    """A moment as every page writes it, "2026-03-10 12:00:05 UTC"; "" for none."""
    if not moment:
        return ""
    return f"{moment.astimezone(datetime.UTC):%Y-%m-%d %H:%M:%S} UTC"
