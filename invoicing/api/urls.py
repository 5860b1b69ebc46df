from django.urls import path

from invoicing.api import views

urlpatterns = [
    path("bill_runs", views.BillRunListCreateApi.as_view(), name="bill-runs"),
    path("bill_runs/<str:pk>", views.BillRunDetailApi.as_view(), name="bill-run-detail"),
    path("invoices", views.InvoiceListApi.as_view(), name="invoices"),
    path("invoices/<str:pk>", views.InvoiceDetailApi.as_view(), name="invoice-detail"),
    path("invoices/<str:pk>/finalize", views.InvoiceFinalizeApi.as_view(), name="invoice-finalize"),
    path("invoices/<str:pk>/void", views.InvoiceVoidApi.as_view(), name="invoice-void"),
    path("invoices/<str:pk>/credit_notes", views.CreditNoteCreateApi.as_view(), name="invoice-credit-notes"),
    path("invoices/<str:pk>/pdf", views.InvoicePdfApi.as_view(), name="invoice-pdf"),
    path("invoices/<str:pk>/facturx", views.InvoiceFacturxApi.as_view(), name="invoice-facturx"),
    path(
        "customers/<str:external_id>/current_usage",
        views.CurrentUsageApi.as_view(),
        name="customer-current-usage",
    ),
]
