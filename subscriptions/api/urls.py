from django.urls import path

from subscriptions.api import orders, views

urlpatterns = [
    path("subscriptions", views.SubscriptionListCreateApi.as_view(), name="subscriptions"),
    path("subscriptions/<str:external_id>", views.SubscriptionDetailApi.as_view(), name="subscription-detail"),
    path("subscriptions/<str:external_id>/changes", views.SubscriptionChangeApi.as_view(), name="subscription-changes"),
    path(
        "subscriptions/<str:external_id>/devices/<str:device>/bind",
        orders.SlotBindApi.as_view(),
        name="subscription-device-bind",
    ),
    path("orders", orders.OrderListApi.as_view(), name="orders"),
    path("orders/<str:pk>", orders.OrderDetailApi.as_view(), name="order-detail"),
    path("webhooks/device-cloud", views.DeviceCloudWebhookApi.as_view(), name="webhooks-device-cloud"),
    path("device_cloud_webhooks", views.WebhookListApi.as_view(), name="device-cloud-webhooks"),
    path("device_cloud_webhooks/<str:pk>/replay", views.WebhookReplayApi.as_view(), name="device-cloud-webhook-replay"),
]
