"""Small view helpers shared by the web pages of several apps."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.text import capfirst
from django.views.decorators.http import require_POST

from signing_service.accounts.permissions import Permission, permission_required


def back_to(request: HttpRequest, fallback: str) -> HttpResponse:
    """Redirect to the form's ``next`` field when it is a page of ours, else to ``fallback``."""
    target = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return redirect(target)
    return redirect(fallback)


def toggle_active_view(model, permission: Permission, fallback: str):
    """A POST-only view that switches ``is_active`` of one ``model`` row and goes back."""

    @require_POST
    @permission_required(permission)
    def toggle(request: HttpRequest, pk: int) -> HttpResponse:
        item = get_object_or_404(model, pk=pk)
        item.is_active = not item.is_active
        item.save(update_fields=["is_active"])
        state = "active" if item.is_active else "inactive"
        messages.success(request, f"{capfirst(model._meta.verbose_name)} “{item}” is {state}.")
        return back_to(request, fallback)

    return toggle
