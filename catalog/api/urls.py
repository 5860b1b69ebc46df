from django.urls import path

from catalog.api import views

urlpatterns = [
    path("products", views.ProductListCreateApi.as_view(), name="products"),
    path("products/<str:code>", views.ProductDetailApi.as_view(), name="product-detail"),
    path("meters", views.MeterListCreateApi.as_view(), name="meters"),
    path("meters/<str:code>", views.MeterDetailApi.as_view(), name="meter-detail"),
    path("tax_rates", views.TaxRateListCreateApi.as_view(), name="tax-rates"),
    path("plans", views.PlanListCreateApi.as_view(), name="plans"),
    path("plans/<str:code>", views.PlanDetailApi.as_view(), name="plan-detail"),
    path("plans/<str:code>/price_versions", views.PriceVersionListCreateApi.as_view(), name="plan-price-versions"),
    path("plans/<str:code>/price_overrides", views.PriceOverrideListCreateApi.as_view(), name="plan-price-overrides"),
    path("price_quotes", views.PriceQuoteApi.as_view(), name="price-quotes"),
]
