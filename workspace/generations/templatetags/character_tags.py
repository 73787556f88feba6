"""The characters panel (project page) and the "make a character" form (a video's page)."""

from __future__ import annotations

from typing import Any

from django import template

from workspace.generations.characters import (
    channel_takes_characters,
    characters_for_project,
    characters_supported,
)
from workspace.generations.models import CHARACTER_NAME_MAX_LENGTH, Generation, Status
from workspace.generations.views import refused_character_pop
from workspace.projects.models import Membership, Project
from workspace.providers.services import channel_get_default

register = template.Library()


@register.inclusion_tag("generations/_characters.html")
def characters_panel(project: Project, membership: Membership) -> dict[str, Any]:
    characters = list(characters_for_project(project=project))
    # Shown where characters exist or the channel new videos go to can make them.
    shown = bool(characters) or channel_takes_characters(channel=channel_get_default())
    return {
        "project": project,
        "membership": membership,
        "characters": characters,
        "shown": shown,
    }


@register.inclusion_tag("generations/_character_make.html", takes_context=True)
def character_make_form(
    context: template.Context, project: Project, membership: Membership, generation: Generation
) -> dict[str, Any]:
    request = context.get("request")
    offered = (
        membership.can_generate
        and not project.is_archived
        and generation.status == Status.COMPLETED
        and bool(generation.video)
        and characters_supported(channel=generation.channel, model=generation.model)
    )
    refused = (
        refused_character_pop(request, generation_id=generation.pk)
        if offered and request is not None
        else {}
    )
    return {
        "project": project,
        "generation": generation,
        "offered": offered,
        "name": refused.get("name", ""),
        "errors": refused.get("errors", []),
        "max_length": CHARACTER_NAME_MAX_LENGTH,
    }
