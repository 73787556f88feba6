# Notification and AuditEvent, moved here from billing with their rows: billing's migration
# 0004 forgets them in its state, this one adopts the existing tables in core's state and then
# renames them (a catalogue change in PostgreSQL; no row is copied). The content types move
# with them, so permissions granted on them and the admin's history keep pointing at them.

import django.core.validators
import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models

MOVED = ('notification', 'auditevent')


def _move_content_types(apps, schema_editor, source, target):
    ContentType = apps.get_model('contenttypes', 'ContentType')
    rows = ContentType.objects.using(schema_editor.connection.alias)
    for model in MOVED:
        # A fresh database has neither yet (they are made after migrating); nothing to move.
        if not rows.filter(app_label=target, model=model).exists():
            rows.filter(app_label=source, model=model).update(app_label=target)


def forwards(apps, schema_editor):
    _move_content_types(apps, schema_editor, 'billing', 'core')


def backwards(apps, schema_editor):
    _move_content_types(apps, schema_editor, 'core', 'billing')


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('billing', '0004_notification_auditevent_to_core'),
        ('contenttypes', '0002_remove_content_type_name'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='AuditEvent',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('actor_name', models.CharField(blank=True, max_length=150)),
                        ('action', models.CharField(choices=[('created', 'Created'), ('changed', 'Changed'), ('deleted', 'Deleted')], max_length=10)),
                        ('target_type', models.CharField(max_length=40)),
                        ('target_id', models.CharField(max_length=40)),
                        ('target_repr', models.CharField(max_length=200)),
                        ('changes', models.JSONField(blank=True, default=dict)),
                        ('created_at', models.DateTimeField(db_index=True, default=django.utils.timezone.now)),
                        ('actor', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        'ordering': ['-created_at', '-id'],
                        'db_table': 'billing_auditevent',
                    },
                ),
                migrations.CreateModel(
                    name='Notification',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('level', models.CharField(choices=[('info', 'Info'), ('warning', 'Warning')], default='info', max_length=10)),
                        ('title', models.CharField(max_length=200)),
                        ('message', models.TextField(blank=True, max_length=4000, validators=[django.core.validators.MaxLengthValidator(4000)])),
                        ('url', models.CharField(blank=True, max_length=300)),
                        ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('read_at', models.DateTimeField(blank=True, null=True)),
                        ('user', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='notifications', to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        'ordering': ['-created_at', '-id'],
                        'indexes': [models.Index(fields=['user', 'read_at'], name='notification_unread')],
                        'db_table': 'billing_notification',
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.AlterModelTable(name='auditevent', table=None),
        migrations.AlterModelTable(name='notification', table=None),
        migrations.RunPython(forwards, backwards, elidable=False),
    ]
