from rest_framework.routers import SimpleRouter

from policies.api.views import MigrationPolicyViewSet

router = SimpleRouter()
router.register("migration-policies", MigrationPolicyViewSet, basename="migrationpolicy")

urlpatterns = router.urls
