"""Signing in, the first-login steps, and user management (admins only)."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout, update_session_auth_hash
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from signing_service.accounts import operations
from signing_service.accounts.forms import (
    PasswordChangeForm,
    TemporaryPasswordForm,
    UserCreateForm,
    UserEditForm,
)
from signing_service.accounts.models import User, UserAgreement
from signing_service.accounts.permissions import Permission, permission_required
from signing_service.audit.admin_actions import Actor


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
        operations.change_own_password(user, Actor.of_request(request))
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
            operations.accept_agreement(request.user, current, Actor.of_request(request))
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
        data = form.cleaned_data
        user = operations.add_user(
            data["username"], data["is_admin"], data["password1"], Actor.of_request(request)
        )
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
        problem = operations.change_problem(request.user, edited, deleting=False)
        if problem:
            form.add_error(None, problem)
        else:
            operations.edit_user(edited, Actor.of_request(request))
            messages.success(request, f"User {edited.username} saved.")
            return redirect("accounts:users")
    return render(request, "accounts/user_edit.html", {"form": form, "subject": subject})


@permission_required(Permission.MANAGE_USERS)
@require_http_methods(["GET", "POST"])
def user_delete(request: HttpRequest, pk: int) -> HttpResponse:
    subject = get_object_or_404(User, pk=pk)
    problem = operations.change_problem(request.user, subject, deleting=True)
    if request.method == "POST" and not problem:
        operations.delete_user(subject, Actor.of_request(request))
        messages.success(request, f"User {subject.username} deleted.")
        return redirect("accounts:users")
    return render(request, "accounts/user_delete.html", {"subject": subject, "problem": problem})


@permission_required(Permission.MANAGE_USERS)
@require_http_methods(["GET", "POST"])
def user_reset_password(request: HttpRequest, pk: int) -> HttpResponse:
    subject = get_object_or_404(User, pk=pk)
    form = TemporaryPasswordForm(request.POST or None, user=subject)
    if request.method == "POST" and form.is_valid():
        operations.reset_password(
            subject, form.cleaned_data["password1"], Actor.of_request(request)
        )
        if subject == request.user:
            update_session_auth_hash(request, subject)
        messages.success(request, f"{subject.username} must choose a new password at next sign-in.")
        return redirect("accounts:users")
    return render(request, "accounts/user_reset_password.html", {"form": form, "subject": subject})


@require_POST
@permission_required(Permission.MANAGE_USERS)
def user_toggle_active(request: HttpRequest, pk: int) -> HttpResponse:
    subject = get_object_or_404(User, pk=pk)
    problem = operations.set_user_active(subject, not subject.is_active, Actor.of_request(request))
    if problem:
        messages.error(request, problem)
    else:
        state = "activated" if subject.is_active else "deactivated"
        messages.success(request, f"User {subject.username} {state}.")
    return redirect("accounts:users")
