"""The API Keys pages: keys, the clients registered with them, and their on/off switches."""

from __future__ import annotations

from django.contrib import messages
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from signing_service.access import approval, operations
from signing_service.access.forms import ApiKeyForm
from signing_service.access.models import ApiKey, Client
from signing_service.accounts.permissions import Permission, permission_required
from signing_service.audit.admin_actions import Actor
from signing_service.audit.models import Source
from signing_service.client_address import client_address
from signing_service.views import ClientSetup
from signing_service.web import back_to, toggle_active_view


def clients_that_stop(key: ApiKey) -> str:
    """What deactivating ``key`` stops: its clients, if it has any."""
    count = key.clients.count()
    if not count:
        return ""
    clients = "1 client" if count == 1 else f"{count} clients"
    return f"{clients} will not be able to list or sign until the key is active again."


toggle_key = toggle_active_view(
    ApiKey, Permission.TOGGLE_API_KEYS, "access:keys", what_stops=clients_that_stop
)
toggle_client = toggle_active_view(Client, Permission.TOGGLE_CLIENTS, "access:clients")


@permission_required(Permission.VIEW_API_KEYS)
def key_list(request: HttpRequest) -> HttpResponse:
    keys = ApiKey.objects.annotate(client_count=Count("clients"))
    return render(request, "access/key_list.html", {"keys": keys})


# The session key under which a new key's secret waits for its one display.
SHOW_ONCE = "api_key_to_show_once"


@permission_required(Permission.MANAGE_API_KEYS)
@require_http_methods(["GET", "POST"])
def key_create(request: HttpRequest) -> HttpResponse:
    form = ApiKeyForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        key, secret = operations.create_key(form.cleaned_data["name"], Actor.of_request(request))
        # Post/redirect/get: reloading the page that shows the secret must not make another
        # key. The secret waits in the (server-side) session only until that page, a moment on.
        request.session[SHOW_ONCE] = {"key": key.pk, "secret": secret}
        return redirect("access:key_created", key.pk)
    return render(request, "access/key_create.html", {"form": form})


@never_cache
@permission_required(Permission.MANAGE_API_KEYS)
def key_created(request: HttpRequest, pk: int) -> HttpResponse:
    """The new key's secret, once: it leaves the session as it is shown, so a reload shows
    only that it was shown."""
    key = get_object_or_404(ApiKey, pk=pk)
    secret = None
    if request.session.get(SHOW_ONCE, {}).get("key") == key.pk:
        secret = request.session.pop(SHOW_ONCE)["secret"]
    context = {
        "key": key,
        "secret": secret,
        "client_setup": ClientSetup.for_request(request, api_key=secret) if secret else None,
    }
    return render(request, "access/key_created.html", context)


@permission_required(Permission.MANAGE_API_KEYS)
@require_http_methods(["GET", "POST"])
def key_delete(request: HttpRequest, pk: int) -> HttpResponse:
    key = get_object_or_404(ApiKey.objects.annotate(client_count=Count("clients")), pk=pk)
    if request.method == "POST":
        operations.delete_key(key, Actor.of_request(request))
        messages.success(request, f"Deleted the API key “{key.name}” and its clients.")
        return redirect("access:keys")
    return render(request, "access/key_delete.html", {"key": key})


@permission_required(Permission.VIEW_CLIENTS)
def key_clients(request: HttpRequest, pk: int) -> HttpResponse:
    key = get_object_or_404(ApiKey, pk=pk)
    clients = key.clients.select_related("api_key")
    return render(request, "access/client_list.html", {"key": key, "clients": clients})


@permission_required(Permission.VIEW_CLIENTS)
def client_list(request: HttpRequest) -> HttpResponse:
    clients = Client.objects.select_related("api_key")
    return render(request, "access/client_list.html", {"key": None, "clients": clients})


@permission_required(Permission.MANAGE_API_KEYS)
@require_http_methods(["GET", "POST"])
def client_delete(request: HttpRequest, pk: int) -> HttpResponse:
    client = get_object_or_404(Client.objects.select_related("api_key"), pk=pk)
    if request.method == "POST":
        operations.delete_client(client, Actor.of_request(request))
        messages.success(request, f"Deleted the client “{client.hostname}”.")
        return redirect("access:key_clients", client.api_key.pk)
    return render(request, "access/client_delete.html", {"client": client})


def client_decision_view(decide, done: str):
    """A POST-only view that approves or rejects one pending client (``decide``) and goes back;
    ``done`` is the message, with ``{name}`` for the client's host name."""

    @require_POST
    @permission_required(Permission.MANAGE_API_KEYS)
    def view(request: HttpRequest, pk: int) -> HttpResponse:
        client = get_object_or_404(Client.objects.select_related("api_key"), pk=pk)
        decide(client, source=Source.WEB, user=request.user, address=client_address(request))
        messages.success(request, done.format(name=client.hostname))
        return back_to(request, "access:clients")

    return view


client_approve = client_decision_view(
    approval.approve, "Approved the client “{name}”: it may list and sign."
)
client_reject = client_decision_view(approval.reject, "Rejected and deleted the client “{name}”.")
