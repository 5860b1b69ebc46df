from django.urls import path

from customers.api.portal_views import PortalSessionCreateApi, PortalUserDetailApi, PortalUserListCreateApi
from customers.api.views import CustomerDetailApi, CustomerListCreateApi

urlpatterns = [
    path("customers", CustomerListCreateApi.as_view(), name="customers"),
    path("customers/<str:external_id>", CustomerDetailApi.as_view(), name="customer-detail"),
    path(
        "customers/<str:external_id>/portal_sessions",
        PortalSessionCreateApi.as_view(),
        name="customer-portal-sessions",
    ),
    path(
        "customers/<str:external_id>/portal_users",
        PortalUserListCreateApi.as_view(),
        name="customer-portal-users",
    ),
    path(
        "customers/<str:external_id>/portal_users/<str:user_id>",
        PortalUserDetailApi.as_view(),
        name="customer-portal-user-detail",
    ),
]
