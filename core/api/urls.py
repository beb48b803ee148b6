from rest_framework.routers import SimpleRouter

from core.api.views import AdminApiTokenViewSet, ApiTokenViewSet, AuditEntryViewSet

router = SimpleRouter()
router.register("audit-log", AuditEntryViewSet, basename="auditentry")
router.register("tokens", ApiTokenViewSet, basename="apitoken")
router.register("admin-tokens", AdminApiTokenViewSet, basename="admin-apitoken")

urlpatterns = router.urls
