from django.urls import include, path

from signing_service import views
from signing_service.api.ninja_api import api
from signing_service.api.views import reference

urlpatterns = [
    path("", views.home, name="home"),
    path("client/", views.client_download, name="client_download"),
    path("identities/", views.identities, name="identities"),
    path("api-keys/", views.api_keys, name="api_keys"),
    path("audit/", views.audit, name="audit"),
    path("api/", reference, name="api_reference"),
    path("api/v1/", api.urls),
    path("accounts/", include("signing_service.accounts.urls")),
]
