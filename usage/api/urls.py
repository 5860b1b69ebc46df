from django.urls import path

from usage.api import views

urlpatterns = [
    path("events", views.EventIngestApi.as_view(), name="events"),
    path(
        "customers/<str:external_id>/current_usage",
        views.CurrentUsageApi.as_view(),
        name="customer-current-usage",
    ),
]
