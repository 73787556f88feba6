# Notification and AuditEvent move to core (see core/migrations/0001): billing stops owning them
# without touching their tables or rows; core takes them over in its first migration.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('billing', '0003_merge_20261202_0737'),
    ]

    operations = [
        # Written on every budget warning and read nowhere (the notification's URL already
        # leads to the usage page); a core model cannot point up at billing's budgets.
        migrations.RemoveField(
            model_name='notification',
            name='budget',
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(name='Notification'),
                migrations.DeleteModel(name='AuditEvent'),
            ],
            database_operations=[],
        ),
    ]
