from django.urls import path

from signing_service.authorities import views

app_name = "authorities"

urlpatterns = [
    path("", views.authority_list, name="list"),
    path("upload/", views.authority_upload, name="upload"),
    path("<int:pk>/delete/", views.authority_delete, name="delete"),
]
