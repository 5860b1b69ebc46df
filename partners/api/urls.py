from django.urls import URLPattern, URLResolver, path

from partners.api import partner_views, statements, views

urlpatterns: list[URLPattern | URLResolver] = [
    # The tenant's staff: partners, their users and their API keys.
    path("partners", views.PartnerListCreateApi.as_view(), name="partners"),
    path("partners/<str:code>", views.PartnerDetailApi.as_view(), name="partner-detail"),
    path("partners/<str:code>/users", views.PartnerUserListCreateApi.as_view(), name="partner-users"),
    path("partners/<str:code>/users/<str:user_id>", views.PartnerUserDetailApi.as_view(), name="partner-user-detail"),
    path("partners/<str:code>/api_keys", views.PartnerApiKeyListCreateApi.as_view(), name="partner-api-keys"),
    path(
        "partners/<str:code>/api_keys/<str:key_id>",
        views.PartnerApiKeyDetailApi.as_view(),
        name="partner-api-key-detail",
    ),
    # Commission statements.
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
    # A partner's own systems, with a partner API key: its customers, the plans offered to partners,
    # its customers' subscriptions, its commission statements.
    path("partner/customers", partner_views.PartnerCustomerListCreateApi.as_view(), name="partner-customers"),
    path(
        "partner/customers/<str:external_id>",
        partner_views.PartnerCustomerDetailApi.as_view(),
        name="partner-customer-detail",
    ),
    path(
        "partner/customers/<str:external_id>/current_usage",
        partner_views.PartnerCustomerCurrentUsageApi.as_view(),
        name="partner-customer-current-usage",
    ),
    path("partner/plans", partner_views.PartnerPlanListApi.as_view(), name="partner-plans"),
    path("partner/subscriptions", partner_views.PartnerSubscriptionCreateApi.as_view(), name="partner-subscriptions"),
    path(
        "partner/subscriptions/<str:external_id>",
        partner_views.PartnerSubscriptionDetailApi.as_view(),
        name="partner-subscription-detail",
    ),
    path("partner/statements", partner_views.PartnerOwnStatementListApi.as_view(), name="partner-own-statements"),
    path(
        "partner/statements/<str:pk>",
        partner_views.PartnerOwnStatementDetailApi.as_view(),
        name="partner-own-statement",
    ),
    path(
        "partner/statements/<str:pk>/pdf",
        partner_views.PartnerOwnStatementPdfApi.as_view(),
        name="partner-own-statement-pdf",
    ),
    path(
        "partner/statements/<str:pk>/csv",
        partner_views.PartnerOwnStatementCsvApi.as_view(),
        name="partner-own-statement-csv",
    ),
    path(
        "partner/subscriptions/<str:external_id>/devices/<str:device>/bind",
        partner_views.PartnerSlotBindApi.as_view(),
        name="partner-subscription-device-bind",
    ),
]
