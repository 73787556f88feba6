from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "workspace.api"
    label = "api"
    verbose_name = "API"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from workspace.api.webhooks import on_generation_finished
        from workspace.generations.models import generation_finished

        # A video made through a token reports its end to the token's webhook, whichever
        # workflow ended it (generations knows nothing of the API).
        generation_finished.connect(on_generation_finished, dispatch_uid="api-webhooks")
