from django.urls import path

from clusters import policy_views as views

app_name = "policies"

urlpatterns = [
    path("policies/", views.PolicyListView.as_view(), name="policy_list"),
    path("policies/add/", views.PolicyEditView.as_view(), name="policy_add"),
    path("policies/<uuid:pk>/", views.PolicyDetailView.as_view(), name="policy_detail"),
    path("policies/<uuid:pk>/edit/", views.PolicyEditView.as_view(), name="policy_edit"),
    path("policies/<uuid:pk>/delete/", views.PolicyDeleteView.as_view(), name="policy_delete"),
]
