from django.contrib.auth import views as auth_views
from django.urls import path

from backoffice import saved_filters, search, views
from backoffice.analytics import views as analytics_views
from backoffice.catalog import overrides as catalog_overrides
from backoffice.catalog import views as catalog_views
from backoffice.customers import portal_users as customer_portal_users
from backoffice.customers import views as customer_views
from backoffice.exports import views as export_views
from backoffice.invoicing import bulk as invoicing_bulk
from backoffice.invoicing import views as invoicing_views
from backoffice.partners import statements as partner_statements
from backoffice.partners import users as partner_users
from backoffice.partners import views as partner_views
from backoffice.payments import views as payment_views
from backoffice.revenue import export as revenue_export
from backoffice.revenue import reports as revenue_views
from backoffice.revenue import runs as revenue_runs
from backoffice.settings import portal as settings_portal
from backoffice.settings import stripe as settings_stripe
from backoffice.settings import views as settings_views
from backoffice.subscriptions import orders as order_views
from backoffice.subscriptions import views as subscription_views
from backoffice.support import views as support_views
from backoffice.team import views as team_views
from backoffice.usage import views as usage_views
from backoffice.webhooks import views as webhook_views

app_name = "backoffice"

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("tenant/switch/", views.tenant_switch, name="tenant-switch"),
    path("customers/", customer_views.customers, name="customers"),
    path("customers/new/", customer_views.customer_new, name="customer-new"),
    path("customers/<str:external_id>/", customer_views.customer_detail, name="customer-detail"),
    path("customers/<str:external_id>/edit/", customer_views.customer_edit, name="customer-edit"),
    path(
        "customers/<str:external_id>/portal-users/invite/",
        customer_portal_users.portal_user_invite_view,
        name="customer-portal-user-invite",
    ),
    path(
        "customers/<str:external_id>/portal-users/<str:user_id>/",
        customer_portal_users.portal_user_change_view,
        name="customer-portal-user-change",
    ),
    path(
        "customers/<str:external_id>/portal-users/<str:user_id>/resend/",
        customer_portal_users.portal_user_resend_view,
        name="customer-portal-user-resend",
    ),
    path("api-keys/", views.api_keys, name="api-keys"),
    path("api-keys/<str:key_id>/revoke/", views.api_key_revoke_view, name="api-key-revoke"),
    path("audit-log/", views.audit_log, name="audit-log"),
    path("search/", search.search, name="search"),
]

# Catalog: everyone reads and uses the calculator; the views check who may write.
urlpatterns += [
    path("catalog/products/", catalog_views.products, name="catalog-products"),
    path("catalog/products/new/", catalog_views.product_new, name="catalog-product-new"),
    path("catalog/products/<str:code>/edit/", catalog_views.product_edit, name="catalog-product-edit"),
    path("catalog/meters/", catalog_views.meters, name="catalog-meters"),
    path("catalog/meters/new/", catalog_views.meter_new, name="catalog-meter-new"),
    path("catalog/meters/<str:code>/edit/", catalog_views.meter_edit, name="catalog-meter-edit"),
    path("catalog/tax-rates/", catalog_views.tax_rates, name="catalog-tax-rates"),
    path("catalog/tax-rates/set/", catalog_views.tax_rate_set_view, name="catalog-tax-rate-set"),
    path("catalog/plans/", catalog_views.plans, name="catalog-plans"),
    path("catalog/plans/new/", catalog_views.plan_new, name="catalog-plan-new"),
    path("catalog/plans/<str:code>/", catalog_views.plan_detail, name="catalog-plan-detail"),
    path("catalog/plans/<str:code>/self-service/", catalog_views.plan_self_service, name="catalog-plan-self-service"),
    path(
        "catalog/plans/<str:code>/partner-visible/",
        catalog_views.plan_partner_visible,
        name="catalog-plan-partner-visible",
    ),
    path(
        "catalog/plans/<str:code>/price-versions/new/",
        catalog_views.price_version_new,
        name="catalog-price-version-new",
    ),
    path("catalog/calculator/", catalog_views.calculator, name="catalog-calculator"),
]

# Subscriptions and device-cloud webhooks: everyone reads; the views check who may write.
urlpatterns += [
    path("subscriptions/", subscription_views.subscriptions, name="subscription-list"),
    path("subscriptions/new/", subscription_views.subscription_new, name="subscription-new"),
    path("subscriptions/<str:external_id>/", subscription_views.subscription_detail, name="subscription-detail"),
    path(
        "subscriptions/<str:external_id>/change/",
        subscription_views.subscription_change_apply,
        name="subscription-change",
    ),
    path(
        "subscriptions/<str:external_id>/change/preview/",
        subscription_views.subscription_change_preview,
        name="subscription-change-preview",
    ),
    path("device-webhooks/", subscription_views.webhooks, name="webhook-list"),
    path("device-webhooks/<str:pk>/", subscription_views.webhook_detail, name="webhook-detail"),
    path("device-webhooks/<str:pk>/replay/", subscription_views.webhook_replay_view, name="webhook-replay"),
]

# Usage: the explorer and the events refused at ingestion; everyone reads, nothing is written.
urlpatterns += [
    path("usage/", usage_views.usage_explorer, name="usage-explorer"),
    path("usage/rejected/", usage_views.usage_rejected, name="usage-rejected"),
]

# Invoicing: everyone reads bill runs and invoices; the views check who may launch, finalize, void, credit.
urlpatterns += [
    path("billing/runs/", invoicing_views.bill_runs, name="bill-runs"),
    path("billing/runs/new/", invoicing_views.bill_run_new, name="bill-run-new"),
    path("billing/runs/<str:pk>/", invoicing_views.bill_run_detail, name="bill-run-detail"),
    path("billing/runs/<str:pk>/progress/", invoicing_views.bill_run_progress, name="bill-run-progress"),
    path("billing/runs/<str:pk>/finalize/", invoicing_views.bill_run_finalize_view, name="bill-run-finalize"),
    path("billing/orders/", order_views.orders, name="orders"),
    path("billing/orders/<str:pk>/", order_views.order_detail, name="order-detail"),
    path("billing/orders/<str:pk>/slots/<str:slot>/bind/", order_views.order_slot_bind, name="order-slot-bind"),
    path("billing/invoices/", invoicing_views.invoices, name="invoices"),
    path("billing/invoices/bulk/", invoicing_bulk.invoices_bulk, name="invoices-bulk"),
    path("billing/invoices/bulk/result/", invoicing_bulk.invoices_bulk_result, name="invoices-bulk-result"),
    path("billing/invoices/<str:pk>/", invoicing_views.invoice_detail, name="invoice-detail"),
    path("billing/invoices/<str:pk>/finalize/", invoicing_views.invoice_finalize_view, name="invoice-finalize"),
    path("billing/invoices/<str:pk>/void/", invoicing_views.invoice_void_view, name="invoice-void"),
    path("billing/invoices/<str:pk>/credit-notes/", invoicing_views.invoice_credit_view, name="invoice-credit"),
    path("billing/invoices/<str:pk>/pdf/", invoicing_views.invoice_pdf_view, name="invoice-pdf"),
    path("billing/invoices/<str:pk>/charge/", invoicing_views.invoice_charge_view, name="invoice-charge"),
]

# Payments, receivables and dunning: finance roles read; owners and finance admins record payments and
# refunds, run dunning and set its policy.
urlpatterns += [
    path("payments/", payment_views.payments, name="payments"),
    path("payments/new/", payment_views.payment_new, name="payment-new"),
    path("payments/<str:pk>/", payment_views.payment_detail, name="payment-detail"),
    path("payments/<str:pk>/refund/", payment_views.payment_refund_view, name="payment-refund"),
    path("receivables/", payment_views.receivables, name="receivables"),
    path("dunning/", payment_views.dunning, name="dunning"),
    path("dunning/run/", payment_views.dunning_run_view, name="dunning-run"),
    path("dunning/policy/", payment_views.dunning_policy_view, name="dunning-policy"),
]

# Support: every member of the team reads, answers, assigns and resolves cases; owners and finance
# admins issue credit notes from them.
urlpatterns += [
    path("support/", support_views.cases, name="support-cases"),
    path("support/new/", support_views.case_new, name="support-case-new"),
    path("support/target/", support_views.target_update_view, name="support-target"),
    path("support/files/<str:pk>/", support_views.attachment_download, name="support-attachment"),
    path("support/<str:pk>/", support_views.case_detail, name="support-case"),
    path("support/<str:pk>/answer/", support_views.case_answer_view, name="support-case-answer"),
    path("support/<str:pk>/assign/", support_views.case_assign_view, name="support-case-assign"),
    path("support/<str:pk>/status/", support_views.case_status_view, name="support-case-status"),
    path("support/<str:pk>/credit-notes/", support_views.case_credit_view, name="support-case-credit"),
]

# Analytics (Finance → Analytics): finance roles read; owners and finance admins enter and import rates.
urlpatterns += [
    path("analytics/mrr/", analytics_views.mrr, name="analytics-mrr"),
    path("analytics/usage/", analytics_views.usage, name="analytics-usage"),
    path("analytics/exchange-rates/", analytics_views.rates, name="analytics-rates"),
    path("analytics/exchange-rates/set/", analytics_views.rate_set_view, name="analytics-rate-set"),
    path("analytics/exchange-rates/import/", analytics_views.rates_import_view, name="analytics-rates-import"),
]

# Revenue (Finance → Revenue): finance roles read the reports and the journal, and download their tables.
urlpatterns += [
    path("revenue/", revenue_views.revenue, name="revenue"),
    path("revenue/export/<str:table>.csv", revenue_views.revenue_export, name="revenue-export"),
    path("revenue/journal/", revenue_views.journal, name="revenue-journal"),
    path("revenue/journal/export.csv", revenue_views.journal_export, name="revenue-journal-export"),
]

# Settings: finance roles read the seller identity, invoicing and usage settings and the device-cloud
# secrets; owners and finance admins change them.
urlpatterns += [
    path("settings/", settings_views.settings_page, name="settings"),
    path("settings/seller/", settings_views.seller_update_view, name="settings-seller"),
    path("settings/payment/", settings_views.payment_update_view, name="settings-payment"),
    path("settings/stripe/", settings_stripe.stripe_keys_update_view, name="settings-stripe"),
    path("settings/invoicing/", settings_views.invoicing_settings_update_view, name="settings-invoicing"),
    path("settings/usage/", settings_views.usage_settings_update_view, name="settings-usage"),
    path("settings/portal/", settings_portal.portal_settings, name="settings-portal"),
    path(
        "settings/device-cloud-secrets/",
        settings_views.device_cloud_secret_add_view,
        name="settings-secret-add",
    ),
    path(
        "settings/device-cloud-secrets/<str:fingerprint>/remove/",
        settings_views.device_cloud_secret_remove_view,
        name="settings-secret-remove",
    ),
]

# Team (Settings → Team): finance roles read; owners invite, change roles, remove members and set
# the two-factor requirement. The invitation link is public: its token is the credential.
urlpatterns += [
    path("settings/team/", team_views.team, name="team"),
    path("settings/team/invite/", team_views.invite_view, name="team-invite"),
    path(
        "settings/team/invitations/<str:pk>/revoke/",
        team_views.invitation_revoke_view,
        name="team-invitation-revoke",
    ),
    path("settings/team/members/<str:pk>/role/", team_views.role_change_view, name="team-role"),
    path("settings/team/members/<str:pk>/remove/", team_views.member_remove_view, name="team-remove"),
    path("settings/security/", team_views.two_factor_requirement_view, name="settings-security"),
    path("invitations/<str:token>/", team_views.invitation_accept_view, name="invitation-accept"),
]

# Outbound webhooks: finance roles read the endpoints and their deliveries; owners and finance admins act.
urlpatterns += [
    path("webhook-endpoints/", webhook_views.endpoints, name="endpoints"),
    path("webhook-endpoints/new/", webhook_views.endpoint_new, name="endpoint-new"),
    path("webhook-endpoints/<str:pk>/", webhook_views.endpoint_detail, name="endpoint-detail"),
    path("webhook-endpoints/<str:pk>/edit/", webhook_views.endpoint_edit, name="endpoint-edit"),
    path("webhook-endpoints/<str:pk>/disable/", webhook_views.endpoint_disable_view, name="endpoint-disable"),
    path("webhook-endpoints/<str:pk>/enable/", webhook_views.endpoint_enable_view, name="endpoint-enable"),
    path("webhook-endpoints/<str:pk>/rotate/", webhook_views.endpoint_rotate_view, name="endpoint-rotate"),
    path("webhook-endpoints/<str:pk>/delete/", webhook_views.endpoint_delete_view, name="endpoint-delete"),
    path("webhook-deliveries/<str:pk>/replay/", webhook_views.delivery_replay_view, name="delivery-replay"),
]

# Revenue: finance roles read the months, runs and exports; owners and finance admins run, close and export.
urlpatterns += [
    path("revenue/runs/", revenue_runs.revenue_runs, name="revenue-runs"),
    path("revenue/runs/new/", revenue_runs.revenue_run_new, name="revenue-run-new"),
    path("revenue/runs/export.csv", revenue_runs.revenue_runs_csv, name="revenue-runs-csv"),
    path("revenue/runs/<str:pk>/", revenue_runs.revenue_run_detail, name="revenue-run-detail"),
    path("revenue/runs/<str:pk>/progress/", revenue_runs.revenue_run_progress, name="revenue-run-progress"),
    path("revenue/periods/<str:period>/close/", revenue_runs.revenue_period_close_view, name="revenue-period-close"),
    path("revenue/erp-export/", revenue_export.erp_export, name="erp-export"),
    path("revenue/erp-export/targets/new/", revenue_export.export_target_new, name="export-target-new"),
    path("revenue/erp-export/exports.csv", revenue_export.journal_exports_csv, name="erp-exports-csv"),
    path("revenue/erp-export/<str:pk>/exports/new/", revenue_export.journal_export_new, name="journal-export-new"),
    path(
        "revenue/erp-export/<str:pk>/exports/<str:export_id>/download/",
        revenue_export.journal_export_download,
        name="journal-export-download",
    ),
]

# Saved filters of the lists: each user's own, in the current tenant.
urlpatterns += [
    path("saved-filters/", saved_filters.saved_filter_new, name="saved-filter-new"),
    path("saved-filters/<str:pk>/", saved_filters.saved_filter_apply, name="saved-filter-apply"),
    path("saved-filters/<str:pk>/delete/", saved_filters.saved_filter_delete_view, name="saved-filter-delete"),
]

# Exports: a list page's rows as CSV (streamed, or written in the background when long), and the
# user's own exports to download.
urlpatterns += [
    path("exports/", export_views.csv_jobs, name="csv-jobs"),
    path("exports/status/", export_views.csv_jobs_status, name="csv-jobs-status"),
    path("exports/<str:kind>.csv", export_views.csv_download, name="csv-download"),
    path("exports/<str:pk>/download/", export_views.csv_job_file, name="csv-job-file"),
]

# A customer's negotiated prices (customer overrides): everyone reads; writers create and end them.
urlpatterns += [
    path("customers/<str:external_id>/overrides/", catalog_overrides.customer_overrides, name="customer-overrides"),
    path(
        "customers/<str:external_id>/overrides/new/",
        catalog_overrides.customer_override_new,
        name="customer-override-new",
    ),
    path(
        "customers/<str:external_id>/overrides/<str:pk>/end/",
        catalog_overrides.customer_override_end,
        name="customer-override-end",
    ),
]

# Partners (resellers): everyone reads partners and their customers; finance roles read commission
# statements; owners and finance admins create and change partners and their users.
urlpatterns += [
    path("partners/", partner_views.partners, name="partners"),
    # "+new": no partner code starts with "+", so a partner coded "new" keeps its page
    path("partners/+new/", partner_views.partner_new, name="partner-new"),
    path("partners/<str:code>/", partner_views.partner_detail, name="partner-detail"),
    path("partners/<str:code>/edit/", partner_views.partner_edit, name="partner-edit"),
    path("partners/<str:code>/users/invite/", partner_users.partner_user_invite_view, name="partner-user-invite"),
    path(
        "partners/<str:code>/users/<str:user_id>/", partner_users.partner_user_change_view, name="partner-user-change"
    ),
    path(
        "partners/<str:code>/users/<str:user_id>/resend/",
        partner_users.partner_user_resend_view,
        name="partner-user-resend",
    ),
    path("partners/<str:code>/api-keys/", partner_users.partner_key_create_view, name="partner-key-create"),
    path(
        "partners/<str:code>/api-keys/<str:key_id>/revoke/",
        partner_users.partner_key_revoke_view,
        name="partner-key-revoke",
    ),
]

# Commission statements and the commission report (Finance): finance roles read; owners and finance
# admins approve statements and mark them paid.
urlpatterns += [
    path("commissions/statements/", partner_statements.statements, name="commission-statements"),
    path("commissions/statements/<str:pk>/", partner_statements.statement_detail, name="commission-statement"),
    path(
        "commissions/statements/<str:pk>/approve/",
        partner_statements.statement_approve_view,
        name="commission-statement-approve",
    ),
    path(
        "commissions/statements/<str:pk>/paid/",
        partner_statements.statement_mark_paid_view,
        name="commission-statement-paid",
    ),
    path("commissions/statements/<str:pk>/pdf/", partner_statements.statement_pdf_view, name="commission-pdf"),
    path("commissions/statements/<str:pk>/lines.csv", partner_statements.statement_csv_view, name="commission-csv"),
    path("commissions/report/", partner_statements.commission_report_view, name="commission-report"),
]
