from django.apps import AppConfig


class PanelConfig(AppConfig):
    """The admin panel's pages. No models: it reads and writes through the domain apps."""

    name = "refapp.panel"
    label = "panel"
