"""``{% service_activity %}`` and ``{% identity_activity identity %}``: activity at a glance
(``audit/activity.py``) for the pages that include it, shown only to those who may read the
audit; for anyone else they render nothing and query nothing."""

from __future__ import annotations

from django import template

from signing_service.accounts.permissions import Permission, has_permission
from signing_service.audit import activity

register = template.Library()


def may_read_audit(context) -> bool:
    return has_permission(context["request"].user, Permission.VIEW_AUDIT)


@register.inclusion_tag("audit/_activity.html", takes_context=True)
def service_activity(context) -> dict:
    if not may_read_audit(context):
        return {}
    return {"activity": activity.service_activity(), "scope": "service"}


@register.inclusion_tag("audit/_activity.html", takes_context=True)
def identity_activity(context, identity) -> dict:
    if not may_read_audit(context):
        return {}
    return {"activity": activity.identity_activity(identity), "scope": "identity"}
