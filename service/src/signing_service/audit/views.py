"""The Audit page (admins only): every list, register and sign request, its export, and the
proof: when the hash chain was last verified (and verifying it now), and the checkpoint key."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import EmptyPage, Page, PageNotAnInteger, Paginator
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from signing_service.accounts.permissions import Permission, permission_required
from signing_service.audit import checkpoints, verification
from signing_service.audit.admin_actions import Actor
from signing_service.audit.export import FORMATS, events_between, record_export
from signing_service.audit.forms import AuditFilterForm, ExportForm
from signing_service.audit.models import AuditEvent
from signing_service.configuration.models import ServiceSettings

PAGE_SIZE = 50


@permission_required(Permission.VIEW_AUDIT)
def event_list(request: HttpRequest) -> HttpResponse:
    form = AuditFilterForm(request.GET or None)
    events = AuditEvent.objects.all()
    if form.is_bound:
        form.is_valid()  # collects the valid filters in cleaned_data, the errors for the page
        events = form.filter(events)
    page, page_problem = page_of(events, request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "form": form,
        "summary": form.summary(),
        "page": page,
        "page_problem": page_problem,
        "query": query.urlencode(),
        "export_form": ExportForm(initial=ExportForm.initial_range()),
        "retention_days": ServiceSettings.load().audit_retention_days,
        "verification": verification.last_verification(),
        "checkpoint_key": checkpoints.public_key_text(),
    }
    return render(request, "audit/list.html", context)


def page_of(events, number: str | None) -> tuple[Page, str]:
    """The page asked for, or the nearest one and what was wrong with the number."""
    paginator = Paginator(events, PAGE_SIZE)
    try:
        return paginator.page(number or 1), ""
    except PageNotAnInteger:
        return paginator.page(1), f"“{number}” is not a page number; this is page 1."
    except EmptyPage:
        last = paginator.num_pages
        return paginator.page(last), f"There is no page {number}; this is the last, page {last}."


@permission_required(Permission.VIEW_AUDIT)
def export(request: HttpRequest) -> HttpResponse:
    form = ExportForm(request.GET)
    if not form.is_valid():
        return render(request, "audit/export.html", {"export_form": form}, status=400)
    start, end, name = (form.cleaned_data[key] for key in ("date_from", "date_to", "format"))
    record_export(Actor.of_request(request), start, end, name)
    lines, content_type = FORMATS[name]
    response = StreamingHttpResponse(lines(events_between(start, end)), content_type=content_type)
    filename = f"audit-{start:%Y%m%d}-{end:%Y%m%d}.{name}"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@require_POST
@permission_required(Permission.VIEW_AUDIT)
def verify(request: HttpRequest) -> HttpResponse:
    """Verify the whole chain now (a walk over every record: seconds per million)."""
    remembered = verification.remember(verification.verify())
    if remembered.problems:
        messages.error(request, f"The audit does not verify: {remembered.first_problem}")
    else:
        messages.success(request, f"The audit verifies, up to record {remembered.sequence}.")
    return redirect(reverse("audit:list") + "#proof")
