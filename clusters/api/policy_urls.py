from rest_framework.routers import SimpleRouter

from clusters.api.policy_views import MigrationPolicyViewSet

router = SimpleRouter()
router.register("migration-policies", MigrationPolicyViewSet, basename="migrationpolicy")

urlpatterns = router.urls
