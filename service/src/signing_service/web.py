"""Small view helpers shared by the web pages of several apps."""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render, resolve_url
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.text import capfirst
from django.views.decorators.http import require_POST

from signing_service.accounts.permissions import Permission, permission_required
from signing_service.audit.admin_actions import Actor
from signing_service.switches import set_active

# The field a deactivation's confirmation page posts back with.
CONFIRMED = "confirmed"


def safe_next(request: HttpRequest, fallback: str) -> str:
    """The form's ``next`` field when it is a page of ours, else the URL of ``fallback``."""
    target = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return resolve_url(fallback)


def back_to(request: HttpRequest, fallback: str) -> HttpResponse:
    """Redirect to the form's ``next`` field when it is a page of ours, else to ``fallback``."""
    return redirect(safe_next(request, fallback))


def toggle_active_view(
    model,
    permission: Permission,
    fallback: str,
    what_stops: Callable[[object], str] | None = None,
):
    """A POST-only view that switches ``is_active`` of one ``model`` row and goes back.

    ``what_stops(item)`` says what deactivating an active ``item`` would stop, or "" when
    nothing that matters would: when it says something, the switch first answers with a page
    that says it and asks again, and only a POST carrying the ``confirmed`` field deactivates.
    A confirmed POST only ever deactivates (a second click, or another tab, never turns it back on).
    """

    @require_POST
    @permission_required(permission)
    def toggle(request: HttpRequest, pk: int) -> HttpResponse:
        item = get_object_or_404(model, pk=pk)
        if CONFIRMED in request.POST:
            active = False
        elif item.is_active and what_stops and (consequence := what_stops(item)):
            context = {
                "item": item,
                "kind": model._meta.verbose_name,
                "consequence": consequence,
                "next": safe_next(request, fallback),
                "confirmed_field": CONFIRMED,
            }
            return render(request, "confirm_deactivate.html", context)
        else:
            active = not item.is_active
        set_active(item, active, Actor.of_request(request))
        state = "active" if item.is_active else "inactive"
        messages.success(request, f"{capfirst(model._meta.verbose_name)} “{item}” is {state}.")
        return back_to(request, fallback)

    return toggle
