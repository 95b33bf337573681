"""Password rules beyond Django's own validators."""

import re

from django.core.exceptions import ValidationError

DEFAULT_ADMIN_USERNAME = "admin"
DEFAULT_ADMIN_PASSWORD = "change_password"  # noqa: S105 - the guide's documented first password


class NotDefaultPasswordValidator:
    """Refuse the documented default password, whatever its case."""

    def validate(self, password: str, user=None) -> None:
        if password.strip().lower() == DEFAULT_ADMIN_PASSWORD:
            raise ValidationError(
                "This is the default password everyone knows; choose another one.",
                code="password_is_default",
            )

    def get_help_text(self) -> str:
        return "Your password cannot be the default password."


USERNAME_PATTERN = r"^[\w.@+-]{1,150}$"
USERNAME_MESSAGE = "Use 1 to 150 letters, digits and @ . + - _ in a user name."


def validate_username(username: str) -> None:
    if not re.fullmatch(USERNAME_PATTERN, username):
        raise ValidationError(USERNAME_MESSAGE, code="invalid_username")
