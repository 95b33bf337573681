"""The Certificate Authorities pages: the CAs that complete identities' chains."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from signing_manager.apple_pki import apple_certificates
from signing_service.accounts.permissions import Permission, permission_required
from signing_service.audit.admin_actions import Actor
from signing_service.authorities.forms import AuthorityUploadForm
from signing_service.authorities.models import CertificateAuthority
from signing_service.authorities.reading import CertificateFileError
from signing_service.authorities.updates import add_authorities, delete_authority
from signing_service.identities.certificates import describe


@permission_required(Permission.VIEW_IDENTITIES)
def authority_list(request: HttpRequest) -> HttpResponse:
    context = {
        "authorities": CertificateAuthority.objects.all(),
        "shipped": sorted((describe(c) for c in apple_certificates()), key=lambda f: f.common_name),
    }
    return render(request, "authorities/list.html", context)


@permission_required(Permission.MANAGE_IDENTITIES)
@require_http_methods(["GET", "POST"])
def authority_upload(request: HttpRequest) -> HttpResponse:
    form = AuthorityUploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            added = add_authorities(form.cleaned_data["certificates"], Actor.of_request(request))
        except CertificateFileError as error:
            form.add_error("certificate_file", str(error))
        else:
            names = ", ".join(f"“{authority.common_name}”" for authority in added)
            messages.success(request, f"Uploaded {names}; identities' chains were completed again.")
            return redirect("authorities:list")
    return render(request, "authorities/upload.html", {"form": form})


@permission_required(Permission.MANAGE_IDENTITIES)
@require_http_methods(["GET", "POST"])
def authority_delete(request: HttpRequest, pk: int) -> HttpResponse:
    authority = get_object_or_404(CertificateAuthority, pk=pk)
    if request.method == "POST":
        delete_authority(authority, Actor.of_request(request))
        messages.success(request, f"Deleted “{authority.common_name}”.")
        return redirect("authorities:list")
    return render(request, "authorities/delete.html", {"authority": authority})
