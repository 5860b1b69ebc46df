"""For logged-in staff, the current tenant is the one chosen in the session (tenant switcher),
provided the user still has a membership there; otherwise the first of their memberships. The
database's row-level security is set to it for the rest of the request."""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from billing_platform.rls import tenant_activate
from tenancy.selectors import membership_get, membership_list_for_user

SESSION_KEY = "tenant_id"


class StaffTenantMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.tenant = None  # type: ignore[attr-defined]
        request.membership = None  # type: ignore[attr-defined]
        user = getattr(request, "user", None)
        # The API has its keys and the portal its own sessions: a staff login counts for neither.
        if user is not None and user.is_authenticated and not request.path.startswith(("/api/", "/portal/")):
            membership = None
            chosen = request.session.get(SESSION_KEY)
            if chosen:
                membership = membership_get(user=user, tenant_id=chosen)
            if membership is None:
                membership = membership_list_for_user(user=user).first()
                if membership is not None:
                    request.session[SESSION_KEY] = str(membership.tenant_id)
            if membership is not None:
                # The request's scope (TenantScopeMiddleware) now sees this tenant's rows only.
                tenant_activate(membership.tenant_id)
                request.tenant = membership.tenant  # type: ignore[attr-defined]
                request.membership = membership  # type: ignore[attr-defined]
        return self.get_response(request)
