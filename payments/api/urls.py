from django.urls import path

from payments.api import dunning_views, gateway_views, report_views, views

urlpatterns = [
    path("payments", views.PaymentListCreateApi.as_view(), name="payments"),
    path("payments/<str:pk>", views.PaymentDetailApi.as_view(), name="payment-detail"),
    path("payments/<str:pk>/refunds", views.PaymentRefundCreateApi.as_view(), name="payment-refunds"),
    path(
        "customers/<str:external_id>/balance_transactions",
        views.CustomerBalanceTransactionListApi.as_view(),
        name="customer-balance-transactions",
    ),
    path("reports/receivables", report_views.ReceivablesReportApi.as_view(), name="receivables-report"),
    path("dunning_policy", dunning_views.DunningPolicyApi.as_view(), name="dunning-policy"),
    path("dunning_runs", dunning_views.DunningRunApi.as_view(), name="dunning-runs"),
    path(
        "customers/<str:external_id>/dunning_policy",
        dunning_views.CustomerDunningPolicyApi.as_view(),
        name="customer-dunning-policy",
    ),
    path("invoices/<str:pk>/pay", gateway_views.InvoicePayApi.as_view(), name="invoice-pay"),
    path(
        "customers/<str:external_id>/payment_method",
        gateway_views.CustomerPaymentMethodApi.as_view(),
        name="customer-payment-method",
    ),
    path("webhooks/stripe", gateway_views.StripeWebhookApi.as_view(), name="webhooks-stripe"),
]
