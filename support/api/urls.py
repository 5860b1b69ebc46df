from django.urls import path

from support.api import views

urlpatterns = [
    path("support_cases", views.CaseListCreateApi.as_view(), name="support-cases"),
    path("support_cases/<str:pk>", views.CaseDetailApi.as_view(), name="support-case-detail"),
    path("support_cases/<str:pk>/messages", views.CaseMessageCreateApi.as_view(), name="support-case-messages"),
    path(
        "support_cases/<str:pk>/credit_notes",
        views.CaseCreditNoteCreateApi.as_view(),
        name="support-case-credit-notes",
    ),
]
