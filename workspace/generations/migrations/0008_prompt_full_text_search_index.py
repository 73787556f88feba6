"""A GIN index for the gallery's full-text search over prompts (PostgreSQL only).

Its expression is exactly what ``selectors.prompt_search`` filters on (SearchVector("prompt",
config="english")), or the planner would not use it. Other databases search by substring and
get no index.
"""

from django.db import migrations

INDEX = "generation_prompt_search"


def create(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        f"CREATE INDEX IF NOT EXISTS {INDEX} ON generations_generation "
        "USING gin (to_tsvector('english'::regconfig, COALESCE(prompt, '')))"
    )


def drop(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [
        ("generations", "0007_merge_20261202_0828"),
    ]

    operations = [migrations.RunPython(create, drop)]
