from django.urls import path

from revrec.api import analytics_views, report_views, views

urlpatterns = [
    path("reports/mrr", views.MrrReportApi.as_view(), name="mrr-report"),
    path("reports/usage", analytics_views.UsageReportApi.as_view(), name="usage-report"),
    path("exchange_rates", analytics_views.ExchangeRatesApi.as_view(), name="exchange-rates"),
    path("reports/revenue", report_views.RevenueStreamReportApi.as_view(), name="revenue-stream-report"),
    path("revenue/report", report_views.RevenueReportApi.as_view(), name="revenue-report"),
    path("revenue/schedules", report_views.RevenueScheduleApi.as_view(), name="revenue-schedules"),
    path("revenue/journal", report_views.JournalEntryListApi.as_view(), name="revenue-journal"),
]
