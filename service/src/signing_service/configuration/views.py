"""The Settings page (admins only): audit retention, client approval and the user agreement."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from signing_service.accounts.permissions import Permission, permission_required
from signing_service.audit.admin_actions import Actor
from signing_service.configuration.forms import SettingsForm


@permission_required(Permission.MANAGE_SETTINGS)
@require_http_methods(["GET", "POST"])
def edit_settings(request: HttpRequest) -> HttpResponse:
    form = SettingsForm.for_current(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if form.apply(Actor.of_request(request)):
            messages.info(request, "Every user must accept the new agreement.")
        messages.success(request, "Settings saved.")
        return redirect("configuration:settings")
    return render(request, "configuration/settings.html", {"form": form})
