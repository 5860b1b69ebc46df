from django.urls import path

from payments.api import views

urlpatterns = [
    path("dunning_policy", views.DunningPolicyApi.as_view(), name="dunning-policy"),
    path("dunning_runs", views.DunningRunApi.as_view(), name="dunning-runs"),
    path(
        "customers/<str:external_id>/dunning_policy",
        views.CustomerDunningPolicyApi.as_view(),
        name="customer-dunning-policy",
    ),
]
