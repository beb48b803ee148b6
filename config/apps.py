from django.apps import AppConfig


class FerryConfig(AppConfig):
    """The composition root as an app, for the commands that wire every layer together: run_ferry
    (the web server and the worker) and lab_register (the lab's hosts, through the embedded agent)."""

    name = "config"
    label = "ferry_config"
    verbose_name = "Ferry"
