from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "workspace.core"
    label = "core"
    verbose_name = "Reelhouse core"
