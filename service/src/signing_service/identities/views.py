"""The Signing Certificates pages: list, import, detail, test sign, authorize, edit, delete."""

from __future__ import annotations

import base64
import datetime
import hashlib

from django.contrib import messages
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from signing_manager.algorithms import Algorithm, verify_digest
from signing_service.accounts.permissions import Permission, permission_required
from signing_service.audit import records
from signing_service.audit.admin_actions import Actor
from signing_service.audit.models import AuditEvent, RequestType, Source, Status
from signing_service.client_address import client_address
from signing_service.identities import operations, token_keys
from signing_service.identities.certificates import describe
from signing_service.identities.forms import (
    AuthorizeForm,
    CertificateUploadForm,
    GenerateKeyForm,
    P12Form,
    TestSignForm,
)
from signing_service.identities.hsm import TokenUnavailable, configured_tokens
from signing_service.identities.models import Identity, PendingIdentity
from signing_service.identities.signers import signer_for
from signing_service.web import toggle_active_view


def recent_signatures(identity: Identity) -> str:
    """What deactivating ``identity`` stops, if it signed in the last 24 hours."""
    since = timezone.now() - datetime.timedelta(days=1)
    count = AuditEvent.objects.filter(
        identity=identity, request_type=RequestType.SIGN, status=Status.SUCCESS, created__gte=since
    ).count()
    if not count:
        return ""
    times = "once" if count == 1 else f"{count} times"
    return (
        f"It signed {times} in the last 24 hours; "
        "no client will be able to sign with it until it is active again."
    )


toggle = toggle_active_view(
    Identity, Permission.TOGGLE_IDENTITIES, "identities:list", what_stops=recent_signatures
)


@permission_required(Permission.VIEW_IDENTITIES)
def identity_list(request: HttpRequest) -> HttpResponse:
    identities = Identity.objects.prefetch_related("authorized_keys")
    context = {
        "identities": identities,
        "pending": PendingIdentity.objects.all(),
        "tokens": configured_tokens(),
    }
    return render(request, "identities/list.html", context)


def store_from_form(
    form: P12Form, actor: Actor, replacing: Identity | None = None
) -> Identity | None:
    """Import from a valid .p12 form, or replace ``replacing``, the key where the form says,
    audited; None when a token refused (said on the form)."""
    parsed, token_label = form.cleaned_data["parsed"], form.token_label()
    try:
        if replacing is None:
            return operations.import_identity(parsed, actor, token_label)
        operations.replace_identity(replacing, parsed, actor, token_label)
    except (TokenUnavailable, token_keys.TokenKeyError) as error:
        form.add_error(None, f"{error} Nothing was imported.")
        return None
    return replacing


@permission_required(Permission.MANAGE_IDENTITIES)
@require_http_methods(["GET", "POST"])
def identity_import(request: HttpRequest) -> HttpResponse:
    form = P12Form(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        identity = store_from_form(form, Actor.of_request(request))
        if identity is not None:
            messages.success(request, f"Imported “{identity.common_name}”.")
            return redirect("identities:detail", identity.pk)
    return render(request, "identities/import.html", {"form": form})


@permission_required(Permission.VIEW_IDENTITIES)
def identity_detail(request: HttpRequest, pk: int) -> HttpResponse:
    identity = get_object_or_404(Identity, pk=pk)
    facts = identity.facts()
    chain = [describe(cert) for cert in identity.chain_certificates()]
    context = {
        "identity": identity,
        "facts": facts,
        "chain": chain,
        "chain_end": chain[-1] if chain else facts,
        "authorized_keys": identity.authorized_keys.all(),
    }
    return render(request, "identities/detail.html", context)


@permission_required(Permission.MANAGE_IDENTITIES)
@require_http_methods(["GET", "POST"])
def identity_edit(request: HttpRequest, pk: int) -> HttpResponse:
    identity = get_object_or_404(Identity, pk=pk)
    form = P12Form(request.POST or None, request.FILES or None, replacing=identity)
    # Authorizations and the active switch belong to the record and stay as they are.
    if (
        request.method == "POST"
        and form.is_valid()
        and store_from_form(form, Actor.of_request(request), replacing=identity)
    ):
        messages.success(request, f"Replaced the identity with “{identity.common_name}”.")
        return redirect("identities:detail", identity.pk)
    return render(request, "identities/edit.html", {"form": form, "identity": identity})


@permission_required(Permission.MANAGE_IDENTITIES)
@require_http_methods(["GET", "POST"])
def identity_delete(request: HttpRequest, pk: int) -> HttpResponse:
    identity = get_object_or_404(Identity, pk=pk)
    if request.method == "POST":
        operations.delete_identity(identity, Actor.of_request(request))
        messages.success(request, f"Deleted “{identity.common_name}”.")
        return redirect("identities:list")
    return render(request, "identities/delete.html", {"identity": identity})


@permission_required(Permission.AUTHORIZE_IDENTITIES)
@require_http_methods(["GET", "POST"])
def identity_authorize(request: HttpRequest, pk: int) -> HttpResponse:
    identity = get_object_or_404(Identity, pk=pk)
    form = AuthorizeForm(request.POST or None, instance=identity)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        operations.authorize(
            identity, data["authorize_all_keys"], data["authorized_keys"], Actor.of_request(request)
        )
        if form.locks_everyone_out():
            messages.warning(
                request,
                f"Saved, but no API key may use “{identity.common_name}” now: choose at least "
                "one key, or All API keys.",
            )
        else:
            messages.success(request, f"Saved who may use “{identity.common_name}”.")
        return redirect("identities:detail", identity.pk)
    return render(request, "identities/authorize.html", {"form": form, "identity": identity})


@permission_required(Permission.TEST_SIGN)
@require_http_methods(["GET", "POST"])
def identity_sign(request: HttpRequest, pk: int) -> HttpResponse:
    identity = get_object_or_404(Identity, pk=pk)
    form = TestSignForm(request.POST or None, request.FILES or None, identity=identity)
    result = None
    if request.method == "POST" and form.is_valid() and usable(identity, form):
        algorithm = Algorithm(form.cleaned_data["algorithm"])
        digest = hashlib.new(algorithm.hash_algorithm.name, form.content()).digest()
        try:
            signature = signer_for(identity).sign_digest(digest, algorithm)
        except TokenUnavailable as error:
            form.add_error(None, f"{error} Nothing was signed.")
            return render(request, "identities/sign.html", {"form": form, "identity": identity})
        # The signature is shown only once its audit record is committed.
        with transaction.atomic():
            records.record(
                RequestType.SIGN,
                Status.SUCCESS,
                source=Source.WEB,
                identity=identity,
                user=request.user,
                algorithm=algorithm,
                digest=digest,
                address=client_address(request),
            )
        result = {
            "algorithm": algorithm,
            "digest": digest.hex(),
            "signature": base64.b64encode(signature).decode(),
            "verified": verify_digest(
                identity.certificate().public_key(), algorithm, digest, signature
            ),
        }
    context = {"form": form, "identity": identity, "result": result}
    return render(request, "identities/sign.html", context)


def usable(identity: Identity, form: TestSignForm) -> bool:
    """Whether the identity may sign now, as the client API judges it; else the form says why."""
    if not identity.is_active:
        form.add_error(None, f"“{identity.common_name}” is inactive: switch it on to sign with it.")
        return False
    problem = identity.validity_problem(timezone.now())
    if problem:
        form.add_error(None, problem[1])
        return False
    return True


# --- Keys generated in a token, waiting for their certificate -----------------------------------


@permission_required(Permission.MANAGE_IDENTITIES)
@require_http_methods(["GET", "POST"])
def generate(request: HttpRequest) -> HttpResponse:
    """Without a configured token the page says how to configure one, and offers no form."""
    form = GenerateKeyForm(request.POST or None)
    if request.method == "POST" and configured_tokens() and form.is_valid():
        try:
            pending = operations.generate_in_token(
                form.cleaned_data["token"],
                form.cleaned_data["key"],
                form.subject(),
                Actor.of_request(request),
            )
        except (TokenUnavailable, token_keys.TokenKeyError) as error:
            form.add_error(None, f"{error} No key was generated.")
        else:
            messages.success(
                request, f"Generated the key of “{pending.common_name}”: send its CSR to your CA."
            )
            return redirect("identities:pending", pending.pk)
    context = {"form": form, "tokens": configured_tokens()}
    return render(request, "identities/generate.html", context)


@permission_required(Permission.MANAGE_IDENTITIES)
@require_http_methods(["GET", "POST"])
def pending_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """A pending identity: its CSR to download, and the form for the issued certificate."""
    pending = get_object_or_404(PendingIdentity, pk=pk)
    form = CertificateUploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            identity = operations.attach_certificate(
                pending,
                form.data_bytes(),
                form.cleaned_data["allow_any_usage"],
                Actor.of_request(request),
            )
        except token_keys.TokenKeyError as error:
            form.add_error("certificate", str(error))
        else:
            messages.success(request, f"“{identity.common_name}” is ready to sign.")
            return redirect("identities:detail", identity.pk)
    return render(request, "identities/pending.html", {"pending": pending, "form": form})


@permission_required(Permission.MANAGE_IDENTITIES)
def pending_csr(request: HttpRequest, pk: int) -> HttpResponse:
    pending = get_object_or_404(PendingIdentity, pk=pk)
    response = HttpResponse(pending.csr_pem(), content_type="application/pkcs10")
    response["Content-Disposition"] = f'attachment; filename="signing-request-{pending.pk}.csr"'
    return response


@permission_required(Permission.MANAGE_IDENTITIES)
@require_http_methods(["GET", "POST"])
def pending_delete(request: HttpRequest, pk: int) -> HttpResponse:
    pending = get_object_or_404(PendingIdentity, pk=pk)
    error = ""
    if request.method == "POST":
        try:
            operations.discard_pending(pending, Actor.of_request(request))
        except TokenUnavailable as unavailable:
            error = f"{unavailable} Nothing was deleted."
        else:
            messages.success(request, f"Deleted the key of “{pending.common_name}”.")
            return redirect("identities:list")
    return render(request, "identities/pending_delete.html", {"pending": pending, "error": error})
