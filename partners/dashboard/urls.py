"""The partner dashboard (``/partners/``): its doors, and the pages of a logged-in partner user."""

from django.urls import URLPattern, URLResolver, path

from partners.dashboard import auth, commissions, customers, orders, usage, users

app_name = "partners"
urlpatterns: list[URLPattern | URLResolver] = [
    path("", customers.customer_list, name="home"),
    path("logout/", auth.logout, name="logout"),
    path("signed-out/", auth.signed_out, name="signed-out"),
    path("security/", auth.security, name="security"),
    path("<slug:slug>/login/", auth.login, name="login"),
    path("<slug:slug>/invitation/<str:token>/", auth.invitation, name="invitation"),
    # "+new": no external_id starts with "+", so a customer whose id is "new" keeps its page
    path("customers/+new/", customers.customer_new, name="customer-new"),
    path("customers/<str:external_id>/", customers.customer_detail, name="customer"),
    path("customers/<str:external_id>/subscribe/", orders.subscribe, name="customer-subscribe"),
    path("subscriptions/<str:external_id>/slots/<uuid:slot_id>/bind/", orders.bind, name="slot-bind"),
    path("usage/", usage.usage, name="usage"),
    path("usage.csv", usage.usage_csv, name="usage-csv"),
    path("commissions/", commissions.commissions, name="commissions"),
    path("statements/<uuid:pk>/pdf", commissions.statement_pdf_download, name="statement-pdf"),
    path("statements/<uuid:pk>/csv", commissions.statement_csv_download, name="statement-csv"),
    path("users/", users.users, name="users"),
    path("users/invite/", users.invite, name="users-invite"),
    path("users/<uuid:user_id>/role/", users.role_change, name="users-role"),
    path("users/<uuid:user_id>/remove/", users.remove, name="users-remove"),
]
