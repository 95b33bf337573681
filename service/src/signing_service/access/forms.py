from django import forms


class ApiKeyForm(forms.Form):
    name = forms.CharField(
        max_length=100,
        help_text="What the key is for, e.g. the build machine or group of machines using it.",
    )

    def clean_name(self):
        name = self.cleaned_data["name"]
        if not name.isprintable():
            raise forms.ValidationError("Use printable characters only (no tabs or line breaks).")
        return name
