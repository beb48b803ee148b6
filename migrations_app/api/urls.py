from rest_framework.routers import SimpleRouter

from migrations_app.api.views import MigrationJobViewSet

router = SimpleRouter()
router.register("migrations", MigrationJobViewSet, basename="migrationjob")

urlpatterns = router.urls
