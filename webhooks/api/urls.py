from django.urls import path

from webhooks.api import views

urlpatterns = [
    path("webhook_endpoints", views.WebhookEndpointListCreateApi.as_view(), name="webhook-endpoints"),
    path("webhook_endpoints/<str:pk>", views.WebhookEndpointDetailApi.as_view(), name="webhook-endpoint-detail"),
    path(
        "webhook_endpoints/<str:pk>/rotate_secret",
        views.WebhookEndpointRotateSecretApi.as_view(),
        name="webhook-endpoint-rotate-secret",
    ),
    path(
        "webhook_endpoints/<str:pk>/deliveries",
        views.WebhookEndpointDeliveriesApi.as_view(),
        name="webhook-endpoint-deliveries",
    ),
    path(
        "webhook_deliveries/<str:pk>/replay", views.WebhookDeliveryReplayApi.as_view(), name="webhook-delivery-replay"
    ),
]
