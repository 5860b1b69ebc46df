from django.urls import path

from customers.api.portal_views import PortalSessionCreateApi
from customers.api.views import CustomerDetailApi, CustomerListCreateApi

urlpatterns = [
    path("customers", CustomerListCreateApi.as_view(), name="customers"),
    path("customers/<str:external_id>", CustomerDetailApi.as_view(), name="customer-detail"),
    path(
        "customers/<str:external_id>/portal_sessions",
        PortalSessionCreateApi.as_view(),
        name="customer-portal-sessions",
    ),
]
