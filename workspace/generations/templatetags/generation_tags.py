from django import template

from workspace.generations.images import format_time
from workspace.generations.models import Generation
from workspace.providers.errors import MEMBER_MESSAGES, ErrorClass

register = template.Library()

# A failed generation is past its last retry: the in-flight wording ("we retry automatically")
# would promise something that will not happen.
FINAL_MESSAGES: dict[ErrorClass, str] = {
    ErrorClass.RATE_LIMITED: (
        "The provider kept asking us to slow down until the retries ran out. Try again later."
    ),
    ErrorClass.OVERLOADED: ("The provider stayed overloaded through every retry. Try again later."),
    ErrorClass.NETWORK: (
        "We could not reach the provider, and the retries did not get through either. "
        "Try again later."
    ),
}


@register.filter
def member_error(generation: Generation) -> str:
    """The plain-words reason a member sees for a failed generation."""
    try:
        error_class = ErrorClass(generation.error_class)
    except ValueError:
        return "The video could not be generated."
    if generation.is_terminal and error_class in FINAL_MESSAGES:
        return FINAL_MESSAGES[error_class]
    try:
        return MEMBER_MESSAGES[error_class]
    except KeyError:
        return "The video could not be generated."


@register.filter
def dollars(cents: int | None) -> str:
    return f"${(cents or 0) / 100:,.2f}"


@register.filter(is_safe=True)
def isolate(text: str) -> str:
    """Wrap member text in a bidi isolate (FSI … PDI), for element text and attributes alike.

    A right-to-left override in a prompt then ends with the prompt: the PDI closes every
    embedding or override opened inside, so it cannot flip the card's buttons or meta line.
    Autoescaping still applies (the input is not marked safe).
    """
    return f"\u2068{text}\u2069"


@register.filter
def player_time(milliseconds: int | None) -> str:
    """3200 -> "0:03.2", as a player shows a time."""
    return "" if milliseconds is None else format_time(milliseconds)
