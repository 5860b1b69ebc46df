from django.urls import URLPattern, URLResolver, path

from partners.api import statements

urlpatterns: list[URLPattern | URLResolver] = []

urlpatterns += [
    path("partners/<str:code>/statements", statements.PartnerStatementListApi.as_view(), name="partner-statements"),
    path("partner_statements/<str:pk>", statements.PartnerStatementDetailApi.as_view(), name="partner-statement"),
    path(
        "partner_statements/<str:pk>/approve",
        statements.PartnerStatementApproveApi.as_view(),
        name="partner-statement-approve",
    ),
    path(
        "partner_statements/<str:pk>/mark_paid",
        statements.PartnerStatementMarkPaidApi.as_view(),
        name="partner-statement-mark-paid",
    ),
    path("partner_statements/<str:pk>/pdf", statements.PartnerStatementPdfApi.as_view(), name="partner-statement-pdf"),
    path("partner_statements/<str:pk>/csv", statements.PartnerStatementCsvApi.as_view(), name="partner-statement-csv"),
]
