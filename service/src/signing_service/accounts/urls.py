from django.contrib.auth import views as auth_views
from django.urls import path

from signing_service.accounts import views

app_name = "accounts"

urlpatterns = [
    path(
        "login/",
        auth_views.LoginView.as_view(
            template_name="accounts/login.html", redirect_authenticated_user=True
        ),
        name="login",
    ),
    path("logout/", views.sign_out, name="logout"),
    path("password/", views.password_change, name="password_change"),
    path("agreement/", views.agreement, name="agreement"),
    path("users/", views.user_list, name="users"),
    path("users/add/", views.user_add, name="user_add"),
    path("users/<int:pk>/", views.user_edit, name="user_edit"),
    path("users/<int:pk>/delete/", views.user_delete, name="user_delete"),
    path("users/<int:pk>/password/", views.user_reset_password, name="user_reset_password"),
    path("users/<int:pk>/toggle/", views.user_toggle_active, name="user_toggle_active"),
]
