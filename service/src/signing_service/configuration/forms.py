from django import forms

from signing_service.configuration.models import ServiceSettings


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
