from rest_framework.routers import SimpleRouter

from migrations_app.api.views import ClusterViewSet, HostViewSet, MigrationJobViewSet, VMViewSet

router = SimpleRouter()
router.register("clusters", ClusterViewSet, basename="cluster")
router.register("hosts", HostViewSet, basename="host")
router.register("vms", VMViewSet, basename="vm")
router.register("migrations", MigrationJobViewSet, basename="migrationjob")

urlpatterns = router.urls
