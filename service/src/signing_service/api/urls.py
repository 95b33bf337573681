from django.urls import path

from signing_service.api import views

app_name = "reference"

urlpatterns = [path("", views.reference, name="reference")]
