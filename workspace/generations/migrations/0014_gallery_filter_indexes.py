"""The gallery's filters read in page order at size (issue 13): a review state kept on the row
and an index per filter; the prompt search index gains the project as its first column.

On PostgreSQL the full-text index becomes ``(project_id, to_tsvector(…))`` with btree_gin (a
trusted extension: the database's owner may create it), so a search in one project reads only
that project's matches: with filters beside a common word, the old index lost to reading every
video of the project and computing its vector (260 ms at 10,000 videos). The expression is
exactly what ``selectors.prompt_search`` filters on, or the index is not used.
"""

from django.conf import settings
from django.db import migrations, models


OLD_INDEX = "generation_prompt_search"
INDEX = "generation_prompt_search_by_project"
VECTOR = "to_tsvector('english'::regconfig, COALESCE(prompt, ''))"


def review_state_from_decisions(apps, schema_editor):  # type: ignore[no-untyped-def]
    Generation = apps.get_model("generations", "Generation")
    ReviewDecision = apps.get_model("reviews", "ReviewDecision")
    current = ReviewDecision.objects.filter(generation=models.OuterRef("pk"), is_current=True)
    Generation.objects.filter(models.Exists(current)).update(
        review_state=models.Subquery(current.values("state")[:1])
    )


def search_by_project(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS btree_gin")
    schema_editor.execute(
        f"CREATE INDEX IF NOT EXISTS {INDEX} ON generations_generation "
        f"USING gin (project_id, {VECTOR})"
    )
    schema_editor.execute(f"DROP INDEX IF EXISTS {OLD_INDEX}")


def search_everywhere(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        f"CREATE INDEX IF NOT EXISTS {OLD_INDEX} ON generations_generation USING gin ({VECTOR})"
    )
    schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):

    dependencies = [
        ('generations', '0013_recent_renders_and_completions_indexes'),
        ('projects', '0006_project_deleted_at'),
        ('providers', '0011_channel_max_takes'),
        ('reviews', '0001_comments_decisions_favourites_policy'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name='generation',
            name='review_state',
            field=models.CharField(default='none', editable=False, max_length=10),
        ),
        migrations.AddIndex(
            model_name='generation',
            index=models.Index(fields=['project', 'created_by', '-created_at', '-id'], name='gallery_by_member'),
        ),
        migrations.AddIndex(
            model_name='generation',
            index=models.Index(fields=['project', 'status', '-created_at', '-id'], name='gallery_by_status'),
        ),
        migrations.AddIndex(
            model_name='generation',
            index=models.Index(fields=['project', 'model', '-created_at', '-id'], name='gallery_by_model'),
        ),
        migrations.AddIndex(
            model_name='generation',
            index=models.Index(fields=['project', 'review_state', '-created_at', '-id'], name='gallery_by_review'),
        ),
        migrations.RunPython(review_state_from_decisions, migrations.RunPython.noop),
        migrations.RunPython(search_by_project, search_everywhere),
    ]
