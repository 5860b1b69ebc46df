from django.urls import path

from revrec.api import analytics_views, views

urlpatterns = [
    path("reports/mrr", views.MrrReportApi.as_view(), name="mrr-report"),
    path("reports/usage", analytics_views.UsageReportApi.as_view(), name="usage-report"),
    path("exchange_rates", analytics_views.ExchangeRatesApi.as_view(), name="exchange-rates"),
]
