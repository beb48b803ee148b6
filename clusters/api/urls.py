from rest_framework.routers import SimpleRouter

from clusters.api.views import ClusterLevelViewSet

# Clusters, hosts and VMs are routed by migrations_app.api.urls, whose viewsets add the actions
# that plan and start migrations to clusters' own.
router = SimpleRouter()
router.register("cluster-levels", ClusterLevelViewSet, basename="clusterlevel")

urlpatterns = router.urls
