"""Signing in, the first-login steps, and user management (admins only)."""

from __future__ import annotations

from axes.utils import reset as axes_reset
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout, update_session_auth_hash
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from signing_service.accounts.forms import (
    PasswordChangeForm,
    TemporaryPasswordForm,
    UserCreateForm,
    UserEditForm,
)
from signing_service.accounts.models import User, UserAgreement
from signing_service.accounts.permissions import Permission, permission_required


@require_POST
def sign_out(request: HttpRequest) -> HttpResponse:
    logout(request)
    messages.info(request, "You have been signed out.")
    return redirect(settings.LOGOUT_REDIRECT_URL)


@require_http_methods(["GET", "POST"])
def password_change(request: HttpRequest) -> HttpResponse:
    form = PasswordChangeForm(request.user, request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save(commit=False)
        user.must_change_password = False
        user.save()
        update_session_auth_hash(request, user)
        messages.success(request, "Your password has been changed.")
        return redirect("home")
    forced = request.user.must_change_password
    return render(request, "accounts/password_change.html", {"form": form, "forced": forced})


@require_http_methods(["GET", "POST"])
def agreement(request: HttpRequest) -> HttpResponse:
    current = UserAgreement.current()
    if request.method == "POST":
        if "accept" in request.POST:
            request.user.accepted_agreement = current
            request.user.save(update_fields=["accepted_agreement"])
            return redirect("home")
        logout(request)
        messages.info(request, "You declined the user agreement and have been signed out.")
        return redirect("accounts:login")
    accepted = request.user.accepted_agreement_id == current.pk
    return render(request, "accounts/agreement.html", {"agreement": current, "accepted": accepted})


@permission_required(Permission.MANAGE_USERS)
def user_list(request: HttpRequest) -> HttpResponse:
    return render(request, "accounts/user_list.html", {"users": User.objects.all()})


@permission_required(Permission.MANAGE_USERS)
@require_http_methods(["GET", "POST"])
def user_add(request: HttpRequest) -> HttpResponse:
    form = UserCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = User(username=form.cleaned_data["username"], is_admin=form.cleaned_data["is_admin"])
        user.set_password(form.cleaned_data["password1"])
        user.save()
        messages.success(request, f"User {user.username} added; they must change the password.")
        return redirect("accounts:users")
    return render(request, "accounts/user_add.html", {"form": form})


@permission_required(Permission.MANAGE_USERS)
@require_http_methods(["GET", "POST"])
def user_edit(request: HttpRequest, pk: int) -> HttpResponse:
    subject = get_object_or_404(User, pk=pk)
    form = UserEditForm(request.POST or None, instance=subject)
    if request.method == "POST" and form.is_valid():
        edited = form.save(commit=False)
        problem = lockout_problem(request.user, edited, deleting=False)
        if problem:
            form.add_error(None, problem)
        else:
            edited.save()
            messages.success(request, f"User {edited.username} saved.")
            return redirect("accounts:users")
    return render(request, "accounts/user_edit.html", {"form": form, "subject": subject})


@permission_required(Permission.MANAGE_USERS)
@require_http_methods(["GET", "POST"])
def user_delete(request: HttpRequest, pk: int) -> HttpResponse:
    subject = get_object_or_404(User, pk=pk)
    problem = lockout_problem(request.user, subject, deleting=True)
    if request.method == "POST" and not problem:
        subject.delete()
        messages.success(request, f"User {subject.username} deleted.")
        return redirect("accounts:users")
    return render(request, "accounts/user_delete.html", {"subject": subject, "problem": problem})


@permission_required(Permission.MANAGE_USERS)
@require_http_methods(["GET", "POST"])
def user_reset_password(request: HttpRequest, pk: int) -> HttpResponse:
    subject = get_object_or_404(User, pk=pk)
    form = TemporaryPasswordForm(request.POST or None, user=subject)
    if request.method == "POST" and form.is_valid():
        # A new password hash also ends the user's open sessions (Django's session auth hash).
        subject.set_password(form.cleaned_data["password1"])
        subject.must_change_password = True
        subject.save()
        axes_reset(username=subject.username)  # the new password lifts a sign-in lockout
        if subject == request.user:
            update_session_auth_hash(request, subject)
        messages.success(request, f"{subject.username} must choose a new password at next sign-in.")
        return redirect("accounts:users")
    return render(request, "accounts/user_reset_password.html", {"form": form, "subject": subject})


@require_POST
@permission_required(Permission.MANAGE_USERS)
def user_toggle_active(request: HttpRequest, pk: int) -> HttpResponse:
    subject = get_object_or_404(User, pk=pk)
    subject.is_active = not subject.is_active
    problem = lockout_problem(request.user, subject, deleting=False)
    if problem:
        messages.error(request, problem)
    else:
        subject.save(update_fields=["is_active"])
        state = "activated" if subject.is_active else "deactivated"
        messages.success(request, f"User {subject.username} {state}.")
    return redirect("accounts:users")


def lockout_problem(actor: User, subject: User, *, deleting: bool) -> str | None:
    """Why a change to ``subject`` (carrying its unsaved new values) is refused, or None.

    Admins may not delete, deactivate or demote themselves; as only active admins manage users,
    the one making a change always remains, so the service never loses its last admin.
    """
    if subject.pk != actor.pk:
        return None
    if deleting:
        return "You cannot delete your own account."
    if not subject.is_active:
        return "You cannot deactivate your own account."
    if not subject.is_admin:
        return "You cannot remove your own admin role."
    return None
