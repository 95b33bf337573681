from django.urls import path

from signing_service.configuration import views

app_name = "configuration"

urlpatterns = [path("", views.edit_settings, name="settings")]
