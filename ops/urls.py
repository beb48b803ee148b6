from django.urls import path

from ops import views

urlpatterns = [
    path("health/", views.health_view, name="health"),
    path("health/detail/", views.health_detail, name="health_detail"),
    path("metrics", views.metrics_view, name="metrics"),
]
