from django.urls import path

from portal import auth, payments, plan, shop, support, users, views
from portal import devices as portal_devices
from portal import invoices as portal_invoices
from portal import overview as portal_overview
from portal import profile as portal_profile
from portal import usage as portal_usage

app_name = "portal"

urlpatterns = [
    path("", views.home, name="home"),
    path("link/<str:token>/", views.link_open, name="link"),
    path("logout/", views.logout, name="logout"),
    path("shop/", shop.shop, name="shop"),
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
    path("overview/", portal_overview.overview, name="overview"),
    path("devices/", portal_devices.devices, name="devices"),
    path("usage/", portal_usage.usage, name="usage"),
    path("usage.csv", portal_usage.usage_csv, name="usage-csv"),
    path("invoices/", portal_invoices.invoices, name="invoices"),
    path("invoices/<uuid:pk>/", portal_invoices.invoice, name="invoice"),
    path("invoices/<uuid:pk>/pdf", portal_invoices.invoice_pdf, name="invoice-pdf"),
    path("invoices/<uuid:pk>/facturx", portal_invoices.invoice_facturx, name="invoice-facturx"),
    path("profile/", portal_profile.profile, name="profile"),
    path("support/", support.support, name="support"),
    path("support/files/<str:pk>/", support.support_attachment, name="support-attachment"),
    path("support/<str:pk>/", support.support_case, name="support-case"),
    path("plan/", plan.plan, name="plan"),
    path("plan/<str:external_id>/<slug:action>/", plan.plan_change, name="plan-change"),
    path("invoices/<uuid:pk>/pay/", payments.invoice_pay, name="invoice-pay"),
    path("payment-methods/", payments.payment_methods, name="payment-methods"),
]
