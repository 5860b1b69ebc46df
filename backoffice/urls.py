from django.contrib.auth import views as auth_views
from django.urls import path

from backoffice import views

app_name = "backoffice"

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("tenant/switch/", views.tenant_switch, name="tenant-switch"),
    path("customers/", views.customers, name="customers"),
    path("customers/new/", views.customer_new, name="customer-new"),
    path("customers/<str:external_id>/", views.customer_detail, name="customer-detail"),
    path("customers/<str:external_id>/edit/", views.customer_edit, name="customer-edit"),
    path("api-keys/", views.api_keys, name="api-keys"),
    path("api-keys/<str:key_id>/revoke/", views.api_key_revoke_view, name="api-key-revoke"),
    path("audit-log/", views.audit_log, name="audit-log"),
]
