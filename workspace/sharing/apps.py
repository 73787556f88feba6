from django.apps import AppConfig


class SharingConfig(AppConfig):
    name = "workspace.sharing"
    label = "sharing"
    verbose_name = "Sharing"
    default_auto_field = "django.db.models.BigAutoField"
