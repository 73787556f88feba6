import uuid

from django import template
from django.urls import reverse
from django.utils.safestring import SafeString, mark_safe

from workspace.generations.cards import cards_render
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


@register.simple_tag(takes_context=True)
def gallery_cards(context: template.Context) -> SafeString:
    """The page's cards (``generations``), each drawn once per version and role (cards.py)."""
    return mark_safe(  # noqa: S308 - the cards' template output
        "".join(
            cards_render(
                context["generations"],
                request=context["request"],
                project=context["project"],
                membership=context["membership"],
            )
        )
    )


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


# Stand-ins a URL's shape is reversed with: no real id or URL prefix contains them.
_STAND_IN_INT = 7_390_115_263_002
_STAND_IN_UUID = uuid.UUID("0badcafe-7e57-4b1d-9e5e-0123456789ab")
_URL_SHAPES: dict[tuple[object, ...], str] = {}


@register.simple_tag
def card_url(name: str, *args: object) -> str:
    """``{% url %}`` for the links every card draws: the same URL, a fraction of the cost.

    ``reverse()`` matches the URL's pattern anew each time (tens of µs); a gallery page draws
    five or six links on each of its 48 cards. The shape of each URL is reversed once per
    process with stand-in ids and filled in with the real ones (ids and UUIDs, whose text is
    what their converters write); any other argument is part of the shape.
    """
    key: list[object] = [name]
    stand_ins: list[object] = []
    for position, arg in enumerate(args):
        if isinstance(arg, bool) or not isinstance(arg, int | uuid.UUID):
            if not (isinstance(arg, str) and arg.isidentifier()):
                return reverse(name, args=args)  # not a fixed word: no shape to keep
            key.append(arg)
            stand_ins.append(arg)
            continue
        is_int = isinstance(arg, int)
        key.append(int if is_int else uuid.UUID)
        # Each id gets its own stand-in, so two ids in one URL are told apart.
        stand_ins.append(
            _STAND_IN_INT + position
            if is_int
            else uuid.UUID(int=_STAND_IN_UUID.int + position)
        )
    shape_key = tuple(key)
    shape = _URL_SHAPES.get(shape_key)
    if shape is None:
        shape = _URL_SHAPES[shape_key] = reverse(name, args=stand_ins)
    url = shape
    for stand_in, arg in zip(stand_ins, args, strict=True):
        if stand_in is not arg:
            url = url.replace(str(stand_in), str(arg), 1)
    return url
