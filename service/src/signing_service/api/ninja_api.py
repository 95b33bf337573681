"""The client API, version 1 (django-ninja), mounted at ``/api/v1/``.

The wire contract is in DESIGN.md ("Client API v1"); this module is its only implementation.
Every call but ``version`` is audited: one record per registration, per listing and per digest,
success or failure. A signature leaves only after its audit record is committed (fail closed).
"""

from __future__ import annotations

import base64
import datetime
import logging

from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError, IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone
from ninja import NinjaAPI, Schema
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.responses import Status as WithStatus

import signing_service
from signing_service.access import tokens
from signing_service.access.models import Client
from signing_service.api import errors, schemas
from signing_service.api.auth import ApiKeyBearer, Caller, ClientTokenBearer
from signing_service.api.failed_auth import failed_authentication
from signing_service.api.signing import SignJob, prepare, sign_jobs
from signing_service.audit import records
from signing_service.audit.models import AuditEvent, RequestType, Status
from signing_service.client_address import client_address
from signing_service.configuration.models import ServiceSettings
from signing_service.database import log_database_failure
from signing_service.identities.models import Identity
from signing_service.monitoring import metrics

log = logging.getLogger(__name__)

API_VERSION = 1
LAST_SEEN_INTERVAL = datetime.timedelta(minutes=1)

api = NinjaAPI(
    title="Signing Service client API",
    version=str(API_VERSION),
    description="Register a client, list the identities it may use, sign digests with them.",
    urls_namespace="api",
    docs_url="/docs",
)

ERRORS = {status: schemas.ErrorOut for status in (401, 403, 422, 429, 503)}
SIGN_ERRORS = (
    "Refusals (`error.code`): 401 `bad_credentials`; 403 `inactive_key`, `inactive_client`, "
    "`pending_client` (waiting for an admin's approval), "
    "`expired_identity` (the certificate's validity has ended), `not_yet_valid_identity` (it "
    "has not begun); 404 `unknown_identity` (no such identity, or not one this client may use: "
    "the two read the same); "
    "413 `request_too_large`; 422 `bad_parameters`; 429 `too_many_failures` (too many calls "
    "without a valid token from this address, with Retry-After); 503 `audit_unavailable`, "
    "`service_unavailable` or `key_unavailable` (the token holding the key is unavailable), "
    "with Retry-After. In a batch, each item may carry its own."
)


class VersionOut(Schema):
    service_version: str
    api_version: int


# --- errors -------------------------------------------------------------------------------------


@api.exception_handler(errors.ApiError)
def api_error(request: HttpRequest, error: errors.ApiError):
    """Every refusal of the client API is answered here (and counted)."""
    metrics.API_REFUSALS.labels(error.code).inc()
    response = api.create_response(request, error.body(), status=error.status)
    if error.retry_after:
        response["Retry-After"] = str(error.retry_after)
    return response


@api.exception_handler(ValidationError)
def validation_error(request: HttpRequest, error: ValidationError):
    first = error.errors[0] if error.errors else {}
    where = ".".join(str(part) for part in first.get("loc", ())[1:]) or "body"
    return refuse_bad_parameters(request, f"{where}: {first.get('msg', 'invalid')}.")


@api.exception_handler(HttpError)
def http_error(request: HttpRequest, error: HttpError):
    if error.status_code == 400:  # ninja could not parse the body (not JSON, ...)
        return refuse_bad_parameters(request, f"The request body is not valid: {error}.")
    code = "bad_request" if error.status_code < 500 else "server_error"
    return api_error(request, errors.ApiError(error.status_code, code, str(error)))


@api.exception_handler(DatabaseError)
def database_error(request: HttpRequest, error: DatabaseError):
    """A database fault anywhere in the client API (reading the token, the identity, ...) is a
    JSON 503 the client can retry, never Django's HTML 500. Nothing is signed or audited."""
    log_database_failure(request, error)
    return api_error(request, errors.service_unavailable())


@api.exception_handler(RequestDataTooBig)
def request_too_large(request: HttpRequest, error: RequestDataTooBig):
    return refuse(request, errors.ApiError(413, "request_too_large", "The request is too large."))


@api.exception_handler(AuthenticationError)
def authentication_error(request: HttpRequest, error: AuthenticationError):
    return api_error(request, errors.bad_credentials())


def refuse_bad_parameters(request: HttpRequest, message: str):
    return refuse(request, errors.bad_parameters(message))


def refuse(request: HttpRequest, refusal: errors.ApiError):
    """A request refused before its endpoint ran: after the credentials, and audited."""
    caller: Caller | None = getattr(request, "auth", None)
    request_type = getattr(request, "audit_request_type", None)
    if caller is not None and request_type is not None:
        try:
            (caller.require_active_client if caller.client else caller.require_active_key)()
        except errors.ApiError as credential_error:
            refusal = credential_error
        refusal = audit_refusal(request, request_type, caller, refusal)
    return api_error(request, refusal)


# --- auditing -----------------------------------------------------------------------------------


def commit(events: list[AuditEvent]) -> None:
    """Write the audit records, or refuse the whole request (503) if they cannot be written."""
    try:
        records.save_all(events)
    except DatabaseError:
        log.exception("Writing audit records failed; the request is refused.")
        raise errors.audit_unavailable() from None


def audit_refusal(
    request: HttpRequest, request_type: RequestType, caller: Caller, error: errors.ApiError
) -> errors.ApiError:
    """Record a refused request; the error to answer with (503 if even that fails). A call
    without a valid token is counted in its address's aggregate record instead (and may be
    answered 429): see failed_auth.py."""
    if error.code == "bad_credentials" and caller.api_key is None:
        return failed_authentication(request_type, client_address(request))
    event = records.build(
        request_type,
        Status.FAILURE,
        reason=error.reason,
        message=error.audit_message,
        api_key=caller.api_key,
        client=caller.client,
        address=client_address(request),
    )
    try:
        commit([event])
    except errors.ApiError as unavailable:
        return unavailable
    return error


def touch(client: Client, address: str | None) -> None:
    """Note when and from where a client was last seen, at most once a minute per client.
    This runs after the audit commit: the answer (a signature, a listing) is already owed, so a
    database fault here is logged, never turned into a failure the audit does not record."""
    now = timezone.now()
    stale = client.last_seen is None or now - client.last_seen > LAST_SEEN_INTERVAL
    if not (stale or client.address != address):
        return
    try:
        with transaction.atomic():  # a savepoint, should a caller hold a transaction open
            Client.objects.filter(pk=client.pk).update(last_seen=now, address=address)
    except DatabaseError:
        log.warning("Could not note that client %s was seen; its answer is given.", client.pk)


# --- endpoints ----------------------------------------------------------------------------------


@api.get("/version", response=VersionOut, auth=None, summary="Service and API versions")
def version(request):
    """Answer without authentication so a client can check it reached a Signing Service."""
    return {"service_version": signing_service.__version__, "api_version": API_VERSION}


@api.post(
    "/clients",
    auth=ApiKeyBearer(RequestType.REGISTER),
    response={201: schemas.RegisterOut, **ERRORS, 409: schemas.ErrorOut},
    summary="Register this machine as a client of an API key",
)
def register(request, body: schemas.RegisterIn):
    """Returns the client token, once; the service keeps only its hash."""
    caller: Caller = request.auth
    address = client_address(request)
    try:
        api_key = caller.require_active_key()
        refuse_known_machine(api_key, body.machine_id)
    except errors.ApiError as error:
        raise audit_refusal(request, RequestType.REGISTER, caller, error) from None
    secret = tokens.new_secret(tokens.CLIENT_TOKEN_PREFIX)
    client = Client(
        api_key=api_key,
        hostname=body.hostname,
        os=body.os,
        client_version=body.client_version,
        machine_id=body.machine_id,
        address=address,
        token_id=secret.token_id,
        token_hash=secret.digest,
        last_seen=timezone.now(),
        is_approved=not ServiceSettings.load().clients_need_approval,
    )
    pending = "" if client.is_approved else "; waits for an admin's approval"
    event = records.build(
        RequestType.REGISTER,
        Status.SUCCESS,
        message=f"{body.hostname} ({body.os}, client {body.client_version}){pending}",
        api_key=api_key,
        client=client,
        address=address,
    )
    try:
        with transaction.atomic():
            client.save()
            event.client = client
            commit([event])
    except IntegrityError:
        # Two registrations of one machine raced; the other one won.
        raise audit_refusal(
            request, RequestType.REGISTER, caller, already_registered(api_key, body.machine_id)
        ) from None
    return WithStatus(201, {"client_id": client.pk, "client_token": secret.value})


def refuse_known_machine(api_key, machine_id: str) -> None:
    """A machine registers once per key: an inactive client must not re-register its way out."""
    existing = Client.objects.filter(api_key=api_key, machine_id=machine_id).first()
    if existing is None:
        return
    if not existing.is_active:
        raise errors.inactive_client(existing.hostname)
    raise already_registered(api_key, machine_id)


def already_registered(api_key, machine_id: str) -> errors.ApiError:
    """409, naming the existing client in the audit only: whoever holds the key must not learn
    other machines' names from it."""
    existing = Client.objects.filter(api_key=api_key, machine_id=machine_id).first()
    name = f"client {existing.pk} ({existing.hostname})" if existing else "a client"
    return errors.ApiError(
        409,
        "already_registered",
        "This machine is already registered with this API key; use its client token, or ask "
        "an admin to delete that client to register again.",
        audit_message=f"The machine is already registered as {name}.",
    )


@api.get(
    "/certificates",
    auth=ClientTokenBearer(RequestType.INDEX),
    response={200: schemas.CertificatesOut, **ERRORS},
    summary="The identities this client may use",
)
def certificates(request):
    caller: Caller = request.auth
    address = client_address(request)
    try:
        client = caller.require_active_client()
    except errors.ApiError as error:
        raise audit_refusal(request, RequestType.INDEX, caller, error) from None
    identities = list(Identity.objects.usable_by(client.api_key))
    commit(
        [
            records.build(
                RequestType.INDEX,
                Status.SUCCESS,
                message=f"{len(identities)} identities listed",
                api_key=client.api_key,
                client=client,
                address=address,
            )
        ]
    )
    touch(client, address)
    return {"certificates": [certificate_out(identity) for identity in identities]}


def certificate_out(identity: Identity) -> dict:
    return {
        "sha1": identity.sha1,
        "sha256": identity.sha256,
        "common_name": identity.common_name,
        "certificate": base64.b64encode(bytes(identity.certificate_der)).decode(),
        "chain": identity.chain,
        "key_type": identity.key_type,
        "key_size": identity.key_size,
        "not_after": identity.not_after.isoformat(),
        "key_location": identity.key_location,
    }


def run_sign_jobs(request, jobs: list[SignJob]) -> list[SignJob]:
    """Authorize, sign and audit the jobs; each ends with a signature or an error."""
    caller: Caller = request.auth
    address = client_address(request)
    try:
        client = caller.require_active_client()
    except errors.ApiError as error:
        raise audit_refusal(request, RequestType.SIGN, caller, error) from None
    identities: dict[str, Identity] = {}
    for job in jobs:
        prepare(job, client.api_key, identities)
    sign_jobs(jobs)
    commit([sign_event(job, client, address) for job in jobs])
    touch(client, address)
    return jobs


def sign_event(job: SignJob, client: Client, address: str | None) -> AuditEvent:
    return records.build(
        RequestType.SIGN,
        Status.FAILURE if job.error else Status.SUCCESS,
        reason=job.error.reason if job.error else "",
        message=job.error.audit_message if job.error else "",
        api_key=client.api_key,
        client=client,
        identity=job.identity,
        algorithm=job.algorithm,
        digest=job.digest,
        address=address,
    )


def job_for(item: schemas.SignIn) -> SignJob:
    return SignJob(item.certificate, item.algorithm, item.digest)


@api.post(
    "/sign",
    auth=ClientTokenBearer(RequestType.SIGN),
    response={200: schemas.SignOut, **ERRORS, 404: schemas.ErrorOut},
    summary="Sign one digest",
    description=SIGN_ERRORS,
)
def sign(request, body: schemas.SignIn):
    (job,) = run_sign_jobs(request, [job_for(body)])
    if job.error:
        raise job.error
    return {"signature": base64.b64encode(job.signature).decode()}


@api.post(
    "/sign/batch",
    auth=ClientTokenBearer(RequestType.SIGN),
    exclude_none=True,
    response={200: schemas.BatchOut, **ERRORS},
    summary=f"Sign up to {schemas.MAX_BATCH} digests; each gets a signature or an error",
    description=SIGN_ERRORS,
)
def sign_batch(request, body: schemas.BatchIn):
    jobs = run_sign_jobs(request, [job_for(item) for item in body.requests])
    return {"results": [batch_item(job) for job in jobs]}


def batch_item(job: SignJob) -> dict:
    if job.error:
        return {"error": job.error.body()["error"]}
    return {"signature": base64.b64encode(job.signature).decode()}
