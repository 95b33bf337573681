"""``{{ event.changes|change_lines }}``: an admin record's changes as the Audit page shows them,
"is_active: true → false", one line per field; details that are no before/after pair (an
export's range) as "from: 2026-01-01"."""

from __future__ import annotations

import json

from django import template

register = template.Library()


def shown(value) -> str:
    """A value as JSON writes it (true, null, "name"), strings without quotes."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


@register.filter
def change_lines(changes: dict) -> list[str]:
    lines = []
    for field, value in (changes or {}).items():
        if isinstance(value, list) and len(value) == 2:
            lines.append(f"{field}: {shown(value[0])} → {shown(value[1])}")
        else:
            lines.append(f"{field}: {shown(value)}")
    return lines
