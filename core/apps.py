from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "Ferry core"

    def ready(self) -> None:
        from core.security import connect_signals

        connect_signals()
