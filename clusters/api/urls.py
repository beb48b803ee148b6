from rest_framework.routers import SimpleRouter

from clusters.api.views import ClusterLevelViewSet, ClusterViewSet, HostViewSet, VMViewSet

router = SimpleRouter()
router.register("cluster-levels", ClusterLevelViewSet, basename="clusterlevel")
router.register("clusters", ClusterViewSet, basename="cluster")
router.register("hosts", HostViewSet, basename="host")
router.register("vms", VMViewSet, basename="vm")

urlpatterns = router.urls
