"""API keys (one per client machine or group of machines) and the clients registered with them."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower

from signing_service.access import tokens

NAME_MAX_LENGTH = 100


class ApiKey(models.Model):
    """A key client machines register with. Only the hash of its secret is stored.

    Inactive: it registers no clients, and none of its clients may list or sign.
    """

    name = models.CharField(max_length=NAME_MAX_LENGTH)
    token_id = models.CharField(max_length=tokens.ID_LENGTH, unique=True, editable=False)
    secret_hash = models.CharField(max_length=64, editable=False)
    is_active = models.BooleanField(default=True)
    created = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["name", "id"]
        verbose_name = "API key"
        constraints = [
            # "Build" and "build" in one list or menu could not be told apart.
            models.UniqueConstraint(Lower("name"), name="api_key_name_unique_ignoring_case")
        ]

    def __str__(self) -> str:
        # With the public start of the secret: how a key is told apart in menus and checkboxes.
        return f"{self.name} ({self.display_id})"

    @classmethod
    def create(cls, name: str, created_by=None) -> tuple[ApiKey, str]:
        """A new key and its secret, which the caller shows once."""
        secret = tokens.new_secret(tokens.API_KEY_PREFIX)
        key = cls.objects.create(
            name=name, token_id=secret.token_id, secret_hash=secret.digest, created_by=created_by
        )
        return key, secret.value

    @classmethod
    def name_problem(cls, name: str) -> str:
        """Why ``name`` (stripped) cannot name a new key, or "" when it can: the one rule for
        the web form and ``signing-service apikey create``."""
        if not name:
            return "An API key needs a name."
        if len(name) > NAME_MAX_LENGTH:
            return f"The name has {len(name)} characters; use at most {NAME_MAX_LENGTH} characters."
        if not name.isprintable():
            return "Use printable characters only (no tabs or line breaks)."
        # The constraint's own expression, so that the check and the database agree.
        taken = cls.objects.alias(lowered=Lower("name")).filter(lowered=Lower(models.Value(name)))
        existing = taken.first()
        if existing:
            return f"An API key named “{existing.name}” exists already; choose another name."
        return ""

    @classmethod
    def find(cls, secret: str) -> ApiKey | None:
        """The key whose secret this is (active or not), or None."""
        token_id = tokens.split_secret(secret, tokens.API_KEY_PREFIX)
        key = cls.objects.filter(token_id=token_id).first() if token_id else None
        if key is None or not tokens.secret_matches(secret, key.secret_hash):
            return None
        return key

    @classmethod
    def named(cls, reference: str) -> ApiKey | None:
        """The key an ops command names: by its public id as ``apikey list`` prints it
        (``smk_<id>_…``, or ``smk_<id>``), else by its name in any case."""
        token_id = reference.removeprefix(f"{tokens.API_KEY_PREFIX}_").removesuffix("_…")
        if len(token_id) == tokens.ID_LENGTH and (
            key := cls.objects.filter(token_id=token_id).first()
        ):
            return key
        return cls.objects.alias(lowered=Lower("name")).filter(lowered=reference.lower()).first()

    @property
    def display_id(self) -> str:
        return f"{tokens.API_KEY_PREFIX}_{self.token_id}_…"


class Client(models.Model):
    """A client machine registered with an API key. Inactive: this client may not list or sign."""

    api_key = models.ForeignKey(ApiKey, on_delete=models.CASCADE, related_name="clients")
    hostname = models.CharField(max_length=255)
    os = models.CharField("OS", max_length=255, blank=True)
    client_version = models.CharField(max_length=64, blank=True)
    machine_id = models.CharField(max_length=255, blank=True)
    address = models.GenericIPAddressField(null=True, blank=True)
    token_id = models.CharField(max_length=tokens.ID_LENGTH, unique=True, editable=False)
    token_hash = models.CharField(max_length=64, editable=False)
    is_active = models.BooleanField(default=True)
    is_approved = models.BooleanField(
        default=True, help_text="False while it waits for an admin's approval (a Setting)."
    )
    first_seen = models.DateTimeField(auto_now_add=True)
    last_seen = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["hostname", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["api_key", "machine_id"], name="one_client_per_machine_and_key"
            )
        ]

    def __str__(self) -> str:
        return self.hostname

    @property
    def may_sign(self) -> bool:
        return self.is_active and self.is_approved and self.api_key.is_active
