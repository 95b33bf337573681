from django.urls import path

from signing_service.access import views

app_name = "access"

urlpatterns = [
    path("", views.key_list, name="keys"),
    path("new/", views.key_create, name="key_create"),
    path("<int:pk>/created/", views.key_created, name="key_created"),
    path("<int:pk>/delete/", views.key_delete, name="key_delete"),
    path("<int:pk>/toggle/", views.toggle_key, name="key_toggle"),
    path("<int:pk>/clients/", views.key_clients, name="key_clients"),
    path("clients/", views.client_list, name="clients"),
    path("clients/<int:pk>/toggle/", views.toggle_client, name="client_toggle"),
    path("clients/<int:pk>/delete/", views.client_delete, name="client_delete"),
    path("clients/<int:pk>/approve/", views.client_approve, name="client_approve"),
    path("clients/<int:pk>/reject/", views.client_reject, name="client_reject"),
]
