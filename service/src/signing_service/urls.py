from django.urls import include, path

from signing_service import views
from signing_service.api.ninja_api import api

handler500 = "signing_service.views.server_error"

urlpatterns = [
    # First: the client API's requests are the most frequent, and each pattern tried costs.
    path("api/v1/", api.urls),
    path("", views.home, name="home"),
    path("client/signing-service.pem", views.service_certificate, name="service_certificate"),
    path("client/signing-manager.whl", views.client_download_latest, name="client_download_latest"),
    path("client/<str:filename>", views.client_download, name="client_download"),
    path("identities/", include("signing_service.identities.urls")),
    path("certificate-authorities/", include("signing_service.authorities.urls")),
    path("api-keys/", include("signing_service.access.urls")),
    path("audit/", include("signing_service.audit.urls")),
    path("settings/", include("signing_service.configuration.urls")),
    path("api/", include("signing_service.api.urls")),
    path("accounts/", include("signing_service.accounts.urls")),
    path("", include("signing_service.monitoring.urls")),
]
