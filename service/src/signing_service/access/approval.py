"""Approving and rejecting clients that registered while the Setting "New clients need an
admin's approval" was on. A pending client may not list or sign (403 ``pending_client``), so a
leaked API key cannot silently add a machine that signs. Both decisions are audited: who
decided, from where (the web) or as which OS user (the ops command line)."""

from __future__ import annotations

from django.db import transaction

from signing_service.access.models import Client
from signing_service.audit import records
from signing_service.audit.models import RequestType, Source, Status


def approve(client: Client, *, source: Source, user=None, actor: str = "", address=None) -> None:
    with transaction.atomic():
        Client.objects.filter(pk=client.pk).update(is_approved=True)
        client.is_approved = True
        decision(RequestType.APPROVE, client, source, user, actor, address)


def reject(client: Client, *, source: Source, user=None, actor: str = "", address=None) -> None:
    """Delete the pending client: its token stops working; the machine may register again (and
    wait again) while its key is active."""
    with transaction.atomic():
        decision(RequestType.REJECT, client, source, user, actor, address)
        client.delete()


def decision(request_type, client, source, user, actor, address) -> None:
    who = f"by {user.username}" if user is not None else f"by {actor or 'an operator'}"
    verb = "approved" if request_type == RequestType.APPROVE else "rejected"
    records.record(
        request_type,
        Status.SUCCESS,
        message=f"Client {client.pk} ({client.hostname}) {verb} {who}.",
        source=source,
        api_key=client.api_key,
        client=client,
        user=user,
        address=address,
    )
