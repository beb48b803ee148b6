from django.apps import AppConfig


class MigrationsAppConfig(AppConfig):
    name = "migrations_app"
    verbose_name = "Migrations"

    def ready(self) -> None:
        # The host lifecycle clusters' services call (clusters.lifecycle): evacuations and the
        # host's queue live here.
        from clusters import lifecycle
        from migrations_app.hosts import LIFECYCLE

        lifecycle.register(LIFECYCLE)
