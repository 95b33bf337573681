"""Forms for signing in, the forced password change and managing users."""

from __future__ import annotations

from django import forms
from django.contrib.auth import forms as auth_forms
from django.contrib.auth import password_validation

from signing_service.accounts.models import User
from signing_service.accounts.validators import validate_username


class PasswordChangeForm(auth_forms.PasswordChangeForm):
    """Django's password change, which also refuses to keep the current password."""

    def clean_new_password1(self):
        password = self.cleaned_data.get("new_password1")
        if password and self.user.check_password(password):
            raise forms.ValidationError(
                "The new password must differ from the current one.", code="password_unchanged"
            )
        return password


class TemporaryPasswordForm(forms.Form):
    """A password an admin sets for someone else; its owner must change it at next sign-in."""

    password1 = forms.CharField(
        label="Temporary password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="The user must choose a new password after signing in with this one.",
    )
    password2 = forms.CharField(
        label="Temporary password (again)",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def __init__(self, *args, user: User | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user

    def clean(self):
        cleaned = super().clean()
        password1, password2 = cleaned.get("password1"), cleaned.get("password2")
        if password1 and password2 and password1 != password2:
            self.add_error("password2", "The two passwords differ.")
        elif password1:
            try:
                password_validation.validate_password(password1, self.user)
            except forms.ValidationError as error:
                self.add_error("password1", error)
        return cleaned


class UserCreateForm(TemporaryPasswordForm):
    username = forms.CharField(
        max_length=150,
        validators=[validate_username],
        help_text="Letters, digits and @ . + - _ only.",
    )
    is_admin = forms.BooleanField(label="Application admin", required=False)
    field_order = ["username", "is_admin", "password1", "password2"]

    def clean_username(self):
        username = self.cleaned_data["username"]
        if User.objects.filter(username__iexact=username).exists():
            raise forms.ValidationError("A user with this name already exists.")
        return username

    def clean(self):
        # Validate the password against the user to be, so it may not resemble the user name.
        self.user = User(username=self.cleaned_data.get("username", ""))
        return super().clean()


class UserEditForm(forms.ModelForm):
    class Meta:
        model = User
        fields = ["username", "is_admin", "is_active"]
        labels = {"is_active": "Active (may sign in)"}
        # Our words, not Django's stock ones ("Designates whether…", "Required. 150…").
        help_texts = {
            "username": "Letters, digits and @ . + - _ only.",
            "is_active": "An inactive user cannot sign in; their records stay.",
        }

    def clean_username(self):
        username = self.cleaned_data["username"]
        taken = User.objects.filter(username__iexact=username).exclude(pk=self.instance.pk)
        if taken.exists():
            raise forms.ValidationError("A user with this name already exists.")
        return username
