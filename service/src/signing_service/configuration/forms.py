from django import forms

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
