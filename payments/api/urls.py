from django.urls import path

from payments.api import views

urlpatterns = [
    path("reports/receivables", views.ReceivablesReportApi.as_view(), name="receivables-report"),
]
