from django.db import migrations, models
from django.db.models.functions import Lower


class Migration(migrations.Migration):
    dependencies = [
        ("projects", "0003_number_duplicate_project_names"),
    ]

    operations = [
        migrations.AddConstraint(
            model_name="project",
            constraint=models.UniqueConstraint(
                Lower("name"),
                name="project_name_unique_ignoring_case",
                violation_error_message="There is already a project with this name.",
            ),
        ),
    ]
