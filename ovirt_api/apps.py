from django.apps import AppConfig


class OvirtApiConfig(AppConfig):
    name = "ovirt_api"
    verbose_name = "oVirt-compatible API"
