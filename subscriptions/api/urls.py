from django.urls import path

from subscriptions.api import views

urlpatterns = [
    path("subscriptions", views.SubscriptionListCreateApi.as_view(), name="subscriptions"),
    path("subscriptions/<str:external_id>", views.SubscriptionDetailApi.as_view(), name="subscription-detail"),
    path("subscriptions/<str:external_id>/changes", views.SubscriptionChangeApi.as_view(), name="subscription-changes"),
    path("webhooks/device-cloud", views.DeviceCloudWebhookApi.as_view(), name="webhooks-device-cloud"),
    path("device_cloud_webhooks", views.WebhookListApi.as_view(), name="device-cloud-webhooks"),
    path("device_cloud_webhooks/<str:pk>/replay", views.WebhookReplayApi.as_view(), name="device-cloud-webhook-replay"),
]
