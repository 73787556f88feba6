from django.db import migrations


def rename_duplicates(apps, schema_editor):  # type: ignore[no-untyped-def]
    """Give every later project of a duplicated name a number: "Launch film (2)".

    The constraint of 0004 would otherwise refuse to be created on a database that already has
    two projects of one name; the oldest keeps its name, so links people know keep reading true.
    """
    Project = apps.get_model("projects", "Project")
    taken = {name.lower() for name in Project.objects.values_list("name", flat=True)}
    seen: set[str] = set()
    for project in Project.objects.order_by("created_at", "id"):
        key = project.name.lower()
        if key not in seen:
            seen.add(key)
            continue
        number = 2
        while True:
            suffix = f" ({number})"
            candidate = project.name[: 120 - len(suffix)] + suffix
            if candidate.lower() not in taken:
                break
            number += 1
        taken.add(candidate.lower())
        seen.add(candidate.lower())
        project.name = candidate
        project.save(update_fields=["name"])


class Migration(migrations.Migration):
    dependencies = [
        ("projects", "0002_description_max_length"),
    ]

    # Only the data here: on PostgreSQL an index cannot be built in the transaction that just
    # updated the table's rows (pending trigger events); 0004 adds the constraint.
    operations = [
        migrations.RunPython(rename_duplicates, migrations.RunPython.noop),
    ]
