from django import forms

from signing_service.access.models import ApiKey


class ApiKeyForm(forms.Form):
    # No max_length here: the browser's maxlength would cut a pasted name without a word;
    # ApiKey.name_problem refuses a long one and says why.
    name = forms.CharField(
        help_text="What the key is for, e.g. the build machine or group of machines using it.",
    )

    def clean_name(self):
        name = self.cleaned_data["name"]
        problem = ApiKey.name_problem(name)
        if problem:
            raise forms.ValidationError(problem)
        return name
