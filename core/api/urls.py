from rest_framework.routers import SimpleRouter

from core.api.views import ApiTokenViewSet, AuditEntryViewSet

router = SimpleRouter()
router.register("audit-log", AuditEntryViewSet, basename="auditentry")
router.register("tokens", ApiTokenViewSet, basename="apitoken")

urlpatterns = router.urls
