from django.db import migrations


def numbered(names: list[str], max_length: int = 120) -> list[str]:
    """The names, oldest first, with every later duplicate (ignoring case) given a free number:
    ["B-roll", "b-ROLL"] → ["B-roll", "b-ROLL (2)"]. The oldest keeps its name."""
    taken = {name.lower() for name in names}
    seen: set[str] = set()
    result = []
    for name in names:
        if name.lower() not in seen:
            seen.add(name.lower())
            result.append(name)
            continue
        number = 2
        while True:
            suffix = f" ({number})"
            candidate = name[: max_length - len(suffix)] + suffix
            if candidate.lower() not in taken:
                break
            number += 1
        taken.add(candidate.lower())
        seen.add(candidate.lower())
        result.append(candidate)
    return result


def rename_duplicates(apps, schema_editor):  # type: ignore[no-untyped-def]
    """Number every later project of a duplicated name: "Launch film (2)".

    The constraint of 0004 would otherwise refuse to be created on a database that already has
    two projects of one name.
    """
    Project = apps.get_model("projects", "Project")
    projects = list(Project.objects.order_by("created_at", "id"))
    for project, name in zip(projects, numbered([p.name for p in projects]), strict=True):
        if name != project.name:
            project.name = name
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
