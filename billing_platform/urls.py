from django.urls import URLPattern, URLResolver, include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from billing_platform.health import healthz

api_v1: list[URLPattern | URLResolver] = [
    path("", include("customers.api.urls")),
    path("", include("catalog.api.urls")),
    path("", include("subscriptions.api.urls")),
    path("", include("usage.api.urls")),
    path("", include("invoicing.api.urls")),
    path("", include("payments.api.urls")),
    path("", include("revrec.api.urls")),
    path("", include("support.api.urls")),
    path("", include("partners.api.urls")),
    path("", include("webhooks.api.urls")),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves Swagger UI's start-up script as a file (?script): no inline script, as
    # the Content-Security-Policy requires.
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="api-docs"),
]

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="backoffice:home", permanent=False)),
    path("healthz", healthz, name="healthz"),
    path("api/v1/", include(api_v1)),
    path("app/", include("backoffice.urls")),
    path("portal/", include("portal.urls")),
    path("partners/", include("partners.dashboard.urls")),
    # allauth: the login's next steps (second factor), password reset and change, two-factor setup.
    path("app/account/", include("allauth.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
]

handler400 = "billing_platform.errors.handler400"
handler404 = "billing_platform.errors.handler404"
handler500 = "billing_platform.errors.handler500"
