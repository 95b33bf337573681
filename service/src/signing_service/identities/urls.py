from django.urls import path

from signing_service.identities import views

app_name = "identities"

urlpatterns = [
    path("", views.identity_list, name="list"),
    path("import/", views.identity_import, name="import"),
    path("<int:pk>/", views.identity_detail, name="detail"),
    path("<int:pk>/edit/", views.identity_edit, name="edit"),
    path("<int:pk>/delete/", views.identity_delete, name="delete"),
    path("<int:pk>/authorize/", views.identity_authorize, name="authorize"),
    path("<int:pk>/sign/", views.identity_sign, name="sign"),
    path("<int:pk>/toggle/", views.toggle, name="toggle"),
    path("generate/", views.generate, name="generate"),
    path("pending/<int:pk>/", views.pending_detail, name="pending"),
    path("pending/<int:pk>/csr/", views.pending_csr, name="pending_csr"),
    path("pending/<int:pk>/delete/", views.pending_delete, name="pending_delete"),
]
