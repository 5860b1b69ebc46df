from django.urls import path

from portal import support, views

app_name = "portal"

urlpatterns = [
    path("", views.home, name="home"),
    path("link/<str:token>/", views.link_open, name="link"),
    path("logout/", views.logout, name="logout"),
    path("signed-out/", views.signed_out, name="signed-out"),
    path("brand/<slug:slug>.css", views.brand_css, name="brand-css"),
    path("brand/<slug:slug>/logo", views.logo, name="logo"),
    path("support/", support.support, name="support"),
    path("support/files/<str:pk>/", support.support_attachment, name="support-attachment"),
    path("support/<str:pk>/", support.support_case, name="support-case"),
]
