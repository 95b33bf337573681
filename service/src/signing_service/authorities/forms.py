"""The upload form of the Certificate Authorities page."""

from __future__ import annotations

from django import forms

from signing_service.authorities.reading import (
    MAX_SIZE,
    CertificateFileError,
    read_ca_certificates,
)


class AuthorityUploadForm(forms.Form):
    """A PEM or DER file; ``cleaned_data["certificates"]`` holds the CA certificates read."""

    certificate_file = forms.FileField(
        label="CA certificate file",
        help_text="PEM (one or more certificates) or DER (.cer), at most 1 MiB.",
    )

    def clean_certificate_file(self):
        upload = self.cleaned_data["certificate_file"]
        if upload.size > MAX_SIZE:  # before reading a byte of it
            raise forms.ValidationError(
                "The file is larger than 1 MiB; a CA certificate is ~2 KiB."
            )
        try:
            self.cleaned_data["certificates"] = read_ca_certificates(upload.read())
        except CertificateFileError as error:
            raise forms.ValidationError(str(error)) from None
        return upload
