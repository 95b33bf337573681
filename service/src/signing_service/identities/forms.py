"""Forms of the Signing Certificates pages."""

from __future__ import annotations

from django import forms

from signing_manager.algorithms import Algorithm, default_algorithm
from signing_service.access.models import ApiKey
from signing_service.identities import token_keys
from signing_service.identities.hsm import configured_tokens
from signing_service.identities.models import Identity, read_new_identity
from signing_service.identities.p12 import MAX_SIZE, P12Error

DATABASE = ""  # the key-location choice "sealed in the database"


def key_location_field(label: str, with_database: bool) -> forms.ChoiceField:
    """Where a key is to live: the configured tokens (and the database, if ``with_database``)."""
    choices = [(token, f"The PKCS#11 token “{token}”") for token in configured_tokens()]
    if with_database:
        choices.insert(0, (DATABASE, "The service's database (sealed under the master key)"))
    return forms.ChoiceField(label=label, choices=choices, required=not with_database)


class P12Form(forms.Form):
    """A .p12 file and its password; ``cleaned_data["parsed"]`` holds the identity read from it."""

    p12_file = forms.FileField(
        label=".p12 file", help_text="One identity (certificate and private key), at most 10 MiB."
    )
    password = forms.CharField(
        label="P12 password",
        required=False,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "off"}),
    )
    allow_any_usage = forms.BooleanField(
        label="Import even if the certificate is not for code signing",
        required=False,
        help_text="Only for a certificate you know Apple's tools accept; the identity page "
        "will say that this check was overridden.",
    )

    def __init__(self, *args, replacing: Identity | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.replacing = replacing
        if configured_tokens():  # else every key is sealed in the database, as ever
            self.fields["key_location"] = key_location_field("Keep the private key in", True)
            self.fields[
                "key_location"
            ].help_text = "In a token the key is non-extractable: it never leaves it again."

    def token_label(self) -> str:
        """The token the key is to go into, or "" for the database."""
        return self.cleaned_data.get("key_location", DATABASE)

    def clean(self):
        cleaned = super().clean()
        upload = cleaned.get("p12_file")
        if upload is None:
            return cleaned
        if upload.size > MAX_SIZE:  # before reading a byte of it
            raise forms.ValidationError("The file is larger than 10 MiB; a .p12 is a few KiB.")
        try:
            parsed = read_new_identity(
                upload.read(),
                cleaned.get("password", ""),
                self.replacing,
                allow_any_usage=cleaned.get("allow_any_usage", False),
            )
        except P12Error as error:
            raise forms.ValidationError(str(error)) from None
        cleaned["parsed"] = parsed
        return cleaned


class AuthorizeForm(forms.ModelForm):
    authorize_all_keys = forms.TypedChoiceField(
        label="Who may use this identity",
        choices=[(True, "All API keys"), (False, "Only the API keys chosen below")],
        coerce=lambda value: value in {True, "True"},
        widget=forms.RadioSelect,
    )
    authorized_keys = forms.ModelMultipleChoiceField(
        label="Authorized API keys",
        queryset=ApiKey.objects.all(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )

    class Meta:
        model = Identity
        fields = ["authorize_all_keys", "authorized_keys"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Under "All API keys" the boxes do not apply: they are greyed out, what they send is
        # ignored, and the keys chosen before stay for a later "only these".
        self.fields["authorized_keys"].disabled = self.all_keys_chosen()

    def all_keys_chosen(self) -> bool:
        """Whether "All API keys" is chosen: in the submitted form, else as saved."""
        choice = self["authorize_all_keys"]
        return choice.field.coerce(choice.value())

    def locks_everyone_out(self) -> bool:
        """Whether the valid form leaves no API key that may use the identity."""
        data = self.cleaned_data
        return not data["authorize_all_keys"] and not data["authorized_keys"]


class TestSignForm(forms.Form):
    # Signed byte for byte: no stripping of leading or trailing whitespace.
    text = forms.CharField(label="Text to sign", required=False, strip=False, widget=forms.Textarea)
    upload = forms.FileField(label="or a file to sign", required=False)
    algorithm = forms.ChoiceField(label="Algorithm")

    def __init__(self, *args, identity: Identity, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["algorithm"].choices = [
            (algorithm.value, algorithm.value)
            for algorithm in Algorithm
            if algorithm.key_type == identity.key_type
        ]
        # What a client uses when it names none, never the first in the list (SHA-1).
        self.fields["algorithm"].initial = default_algorithm(identity.certificate().public_key())

    def clean(self):
        cleaned = super().clean()
        if not cleaned.get("text") and not cleaned.get("upload"):
            raise forms.ValidationError("Enter some text or choose a file to sign.")
        return cleaned

    def content(self) -> bytes:
        upload = self.cleaned_data.get("upload")
        if upload:
            return b"".join(upload.chunks())
        return self.cleaned_data["text"].encode()


class GenerateKeyForm(forms.Form):
    """A key pair to generate in a token, and the subject of its CSR."""

    token = forms.ChoiceField(label="Token")
    key = forms.ChoiceField(
        label="Key", choices=[(name, spec.label) for name, spec in token_keys.KEY_SPECS.items()]
    )
    common_name = forms.CharField(label="Common name", max_length=64)
    email = forms.EmailField(label="Email address", required=False)
    organization = forms.CharField(label="Organization", max_length=64, required=False)
    organizational_unit = forms.CharField(
        label="Organizational unit", max_length=64, required=False
    )
    country = forms.CharField(
        label="Country", max_length=2, min_length=2, required=False, help_text="Two letters."
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["token"] = key_location_field("Token", False)

    def subject(self) -> token_keys.Subject:
        data = self.cleaned_data
        return token_keys.Subject(
            common_name=data["common_name"],
            email=data["email"],
            organization=data["organization"],
            organizational_unit=data["organizational_unit"],
            country=data["country"].upper(),
        )


class CertificateUploadForm(forms.Form):
    """The certificate a CA issued for a pending key."""

    certificate = forms.FileField(
        label="Certificate",
        help_text="PEM or DER (.cer, .crt), or a chain (.p7b, .p7c, PEM bundle); at most 1 MiB.",
    )
    allow_any_usage = P12Form.base_fields["allow_any_usage"]

    def data_bytes(self) -> bytes:
        upload = self.cleaned_data["certificate"]
        if upload.size > token_keys.MAX_CERTIFICATE_FILE:
            raise token_keys.TokenKeyError("The file is larger than 1 MiB.")
        return upload.read()
