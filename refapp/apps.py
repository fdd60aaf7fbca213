from django.apps import AppConfig


class RefappConfig(AppConfig):
    name = "refapp"
    verbose_name = "refapp core"
