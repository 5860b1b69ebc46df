from django.urls import path

from revrec.api import views

urlpatterns = [
    path("reports/mrr", views.MrrReportApi.as_view(), name="mrr-report"),
]
