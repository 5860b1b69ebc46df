from django.urls import path

from usage.api import views

urlpatterns = [
    path("events", views.EventIngestApi.as_view(), name="events"),
]
