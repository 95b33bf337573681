"""Who may do what: the guide's permission matrix, in one place.

Admins ("application admin") may do everything. Other signed-in users may view identities, API
keys and clients and switch them on and off, and read the API reference; nothing else. Views use
``permission_required``; templates use the ``can`` context variable; tests walk ``MATRIX``.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from functools import wraps

from django.core.exceptions import PermissionDenied


class Permission(StrEnum):
    VIEW_IDENTITIES = "view_identities"
    TOGGLE_IDENTITIES = "toggle_identities"
    MANAGE_IDENTITIES = "manage_identities"  # import, edit, delete
    AUTHORIZE_IDENTITIES = "authorize_identities"
    TEST_SIGN = "test_sign"
    VIEW_API_KEYS = "view_api_keys"
    TOGGLE_API_KEYS = "toggle_api_keys"
    MANAGE_API_KEYS = "manage_api_keys"  # create, delete
    VIEW_CLIENTS = "view_clients"
    TOGGLE_CLIENTS = "toggle_clients"
    VIEW_AUDIT = "view_audit"
    MANAGE_USERS = "manage_users"
    MANAGE_SETTINGS = "manage_settings"
    VIEW_API_REFERENCE = "view_api_reference"


NON_ADMIN_PERMISSIONS = frozenset(
    {
        Permission.VIEW_IDENTITIES,
        Permission.TOGGLE_IDENTITIES,
        Permission.VIEW_API_KEYS,
        Permission.TOGGLE_API_KEYS,
        Permission.VIEW_CLIENTS,
        Permission.TOGGLE_CLIENTS,
        Permission.VIEW_API_REFERENCE,
    }
)

MATRIX: dict[str, frozenset[Permission]] = {
    "admin": frozenset(Permission),
    "user": NON_ADMIN_PERMISSIONS,
}


def has_permission(user, permission: Permission) -> bool:
    """Whether a signed-in, active user holds the permission (anonymous users hold none)."""
    if not (user.is_authenticated and user.is_active):
        return False
    return permission in MATRIX[user.role]


def permission_required(permission: Permission) -> Callable:
    """View decorator: 403 for a signed-in user without the permission."""

    def decorator(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if not has_permission(request.user, permission):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        wrapped.required_permission = permission
        return wrapped

    return decorator


class Capabilities:
    """Template helper: ``{% if can.manage_users %}``."""

    def __init__(self, user):
        self._user = user

    def __getattr__(self, name: str) -> bool:
        try:
            permission = Permission(name)
        except ValueError:
            raise AttributeError(name) from None
        return has_permission(self._user, permission)
