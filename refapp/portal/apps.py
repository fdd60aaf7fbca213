from django.apps import AppConfig


class PortalConfig(AppConfig):
    """The affiliate portal's pages and the public join flow. No models."""

    name = "refapp.portal"
    label = "portal"
