"""The Settings page (admins only): audit retention and the user agreement."""

from __future__ import annotations

from django.contrib import messages
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from signing_service.accounts.models import UserAgreement
from signing_service.accounts.permissions import Permission, permission_required
from signing_service.configuration.forms import SettingsForm
from signing_service.configuration.models import ServiceSettings


@permission_required(Permission.MANAGE_SETTINGS)
@require_http_methods(["GET", "POST"])
def edit_settings(request: HttpRequest) -> HttpResponse:
    current = UserAgreement.current()
    form = SettingsForm(
        request.POST or None,
        instance=ServiceSettings.load(),
        initial={"agreement_text": current.text},
    )
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            form.save()
            text = form.cleaned_data["agreement_text"].replace("\r\n", "\n")
            if text.strip() != current.text.strip():
                UserAgreement.objects.create(text=text)
                messages.info(request, "Every user must accept the new agreement.")
        messages.success(request, "Settings saved.")
        return redirect("configuration:settings")
    return render(request, "configuration/settings.html", {"form": form})
