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
]
