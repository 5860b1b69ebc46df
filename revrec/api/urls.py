from django.urls import path

from revrec.api import analytics_views, export_views, report_views, run_views, views

urlpatterns = [
    path("reports/mrr", views.MrrReportApi.as_view(), name="mrr-report"),
    path("reports/usage", analytics_views.UsageReportApi.as_view(), name="usage-report"),
    path("exchange_rates", analytics_views.ExchangeRatesApi.as_view(), name="exchange-rates"),
    path("reports/revenue", report_views.RevenueStreamReportApi.as_view(), name="revenue-stream-report"),
    path("revenue/report", report_views.RevenueReportApi.as_view(), name="revenue-report"),
    path("revenue/schedules", report_views.RevenueScheduleApi.as_view(), name="revenue-schedules"),
    path("revenue/journal", report_views.JournalEntryListApi.as_view(), name="revenue-journal"),
    path("revenue/runs", run_views.RecognitionRunListCreateApi.as_view(), name="revenue-runs"),
    path("revenue/runs/<str:pk>", run_views.RecognitionRunDetailApi.as_view(), name="revenue-run-detail"),
    path("revenue/periods", run_views.RevenuePeriodListApi.as_view(), name="revenue-periods"),
    path("revenue/periods/<str:period>/close", run_views.RevenuePeriodCloseApi.as_view(), name="revenue-period-close"),
    path("revenue/export_targets", export_views.ExportTargetListCreateApi.as_view(), name="export-targets"),
    path(
        "revenue/export_targets/<str:pk>/exports",
        export_views.JournalExportListCreateApi.as_view(),
        name="export-target-exports",
    ),
    path(
        "revenue/export_targets/<str:pk>/exports/<str:export_id>/download",
        export_views.JournalExportDownloadApi.as_view(),
        name="journal-export-download",
    ),
]
