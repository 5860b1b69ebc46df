from django.urls import URLPattern, URLResolver

app_name = "partners"
urlpatterns: list[URLPattern | URLResolver] = []
