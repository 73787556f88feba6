from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "workspace.core"
    label = "core"
    verbose_name = "Reelhouse core"

    def ready(self) -> None:
        from django.urls import register_converter

        from workspace.core.converters import IdConverter

        # <id:…> in every urls.py: row ids bounded to what the database can hold.
        register_converter(IdConverter, "id")
