from django import template

from workspace.generations.models import Generation
from workspace.providers.errors import MEMBER_MESSAGES, ErrorClass

register = template.Library()


@register.filter
def member_error(generation: Generation) -> str:
    """The plain-words reason a member sees for a failed generation."""
    try:
        return MEMBER_MESSAGES[ErrorClass(generation.error_class)]
    except ValueError:
        return "The video could not be generated."


@register.filter
def dollars(cents: int | None) -> str:
    return f"${(cents or 0) / 100:,.2f}"
