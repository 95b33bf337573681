from django.urls import path

from signing_service.audit import views

app_name = "audit"

urlpatterns = [
    path("", views.event_list, name="list"),
    path("export/", views.export, name="export"),
    path("verify/", views.verify, name="verify"),
]
