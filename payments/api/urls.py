from django.urls import path

from payments.api import views

urlpatterns = [
    path("invoices/<str:pk>/pay", views.InvoicePayApi.as_view(), name="invoice-pay"),
    path(
        "customers/<str:external_id>/payment_method",
        views.CustomerPaymentMethodApi.as_view(),
        name="customer-payment-method",
    ),
    path("webhooks/stripe", views.StripeWebhookApi.as_view(), name="webhooks-stripe"),
]
