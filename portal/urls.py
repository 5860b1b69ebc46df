from django.urls import path

from portal import auth, users, views

app_name = "portal"

urlpatterns = [
    path("", views.home, name="home"),
    path("link/<str:token>/", views.link_open, name="link"),
    path("logout/", views.logout, name="logout"),
    path("signed-out/", views.signed_out, name="signed-out"),
    path("brand/<slug:slug>.css", views.brand_css, name="brand-css"),
    path("brand/<slug:slug>/logo", views.logo, name="logo"),
    path("<slug:slug>/login/", auth.login, name="login"),
    path("<slug:slug>/invitation/<str:token>/", auth.invitation, name="invitation"),
    path("security/", auth.security, name="security"),
    path("users/", users.users, name="users"),
    path("users/invite/", users.invite, name="users-invite"),
    path("users/<uuid:user_id>/role/", users.role_change, name="users-role"),
    path("users/<uuid:user_id>/remove/", users.remove, name="users-remove"),
]
