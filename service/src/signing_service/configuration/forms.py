"""The Settings form, which ``signing-service settings set`` fills in too: one set of rules."""

from __future__ import annotations

from django import forms
from django.db import transaction

from signing_service.accounts.models import UserAgreement
from signing_service.audit.admin_actions import Action, Actor, differences, record_admin_action
from signing_service.configuration.models import AUDIT_RETENTION_DAYS_RANGE, ServiceSettings


class SettingsForm(forms.ModelForm):
    agreement_text = forms.CharField(
        label="User agreement",
        widget=forms.Textarea(attrs={"rows": 12}),
        help_text="Changing the text makes every user accept the agreement again.",
    )

    class Meta:
        model = ServiceSettings
        fields = ["audit_retention_days", "clients_need_approval", "agreement_text"]
        labels = {"audit_retention_days": "Audit retention (days)"}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # The model field's bounds: the stock input would offer 0, which the server refuses.
        low, high = AUDIT_RETENTION_DAYS_RANGE
        self.fields["audit_retention_days"].widget.attrs.update(min=low, max=high)

    @classmethod
    def for_current(cls, data=None) -> SettingsForm:
        """The form over the stored settings and the agreement in force."""
        text = UserAgreement.current().text
        return cls(data, instance=ServiceSettings.load(), initial={"agreement_text": text})

    def apply(self, actor: Actor) -> bool:
        """Save the valid form and record what changed (the agreement by version, not its text),
        both or neither; whether a new agreement is in force."""
        stored = ServiceSettings.load()
        before = {name: getattr(stored, name) for name in self.Meta.fields[:2]}
        current = UserAgreement.current()
        text = self.cleaned_data["agreement_text"].replace("\r\n", "\n")
        with transaction.atomic():
            saved = self.save()
            changes = differences(before, {name: getattr(saved, name) for name in before})
            new_agreement = text.strip() != current.text.strip()
            if new_agreement:
                agreement = UserAgreement.objects.create(text=text)
                changes["agreement"] = [current.pk, agreement.pk]
            if changes:
                record_admin_action(actor, Action.SETTINGS_CHANGE, changes=changes)
        return new_agreement
