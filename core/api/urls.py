from rest_framework.routers import SimpleRouter

from core.api.views import AuditEntryViewSet

router = SimpleRouter()
router.register("audit-log", AuditEntryViewSet, basename="auditentry")

urlpatterns = router.urls
