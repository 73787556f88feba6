from django.apps import AppConfig


class ProjectsConfig(AppConfig):
    name = "workspace.projects"
    label = "projects"
