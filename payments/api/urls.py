from django.urls import path

from payments.api import dunning_views, report_views, views

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
]
