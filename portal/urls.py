from django.urls import path

from portal import payments, plan, support, views

app_name = "portal"

urlpatterns = [
    path("", views.home, name="home"),
    path("link/<str:token>/", views.link_open, name="link"),
    path("logout/", views.logout, name="logout"),
    path("signed-out/", views.signed_out, name="signed-out"),
    path("brand/<slug:slug>.css", views.brand_css, name="brand-css"),
    path("brand/<slug:slug>/logo", views.logo, name="logo"),
    path("support/", support.support, name="support"),
    path("support/<str:pk>/", support.support_case, name="support-case"),
    path("plan/", plan.plan, name="plan"),
    path("plan/<str:external_id>/<slug:action>/", plan.plan_change, name="plan-change"),
    path("invoices/<uuid:pk>/pay/", payments.invoice_pay, name="invoice-pay"),
    path("payment-methods/", payments.payment_methods, name="payment-methods"),
]
