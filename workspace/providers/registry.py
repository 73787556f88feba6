"""The one list of providers Reelhouse speaks to.

Each name is a folder under ``workspace/providers/integrations/`` whose ``spec.py`` defines
``SPEC`` (a ``ProviderSpec``). Everything per provider is derived from these specs: the channel's
choices, base URLs and key variables, the adapter a channel gets, the billing policy, the
simulator's routes and banner, the admin's hints and the variables the tests clear.

Adding a provider: its folder, then its name below. Order is the order of the admin's choices;
the first is the kind a fresh install's default channel uses.

Loading checks every spec and the list as a whole; anything missing or clashing raises
``SpecError`` at import, that is when Django (or the simulator) starts.

No Django here: the simulator reads this list too.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from types import MappingProxyType

from workspace.providers.spec import ProviderSpec, SpecError

INTEGRATIONS: tuple[str, ...] = (
    "openai_videos",
    "runway",
    "fal",
    "gemini",
    "vertex",
    "luma",
)

_PACKAGE = "workspace.providers.integrations"


class UnknownProvider(LookupError):
    """A kind no registered provider has (a row written around the choices, or a removed one)."""


def load(names: Iterable[str]) -> Mapping[str, ProviderSpec]:
    """The specs of these integration folders by kind, checked one by one and together."""
    specs: dict[str, ProviderSpec] = {}
    for name in names:
        try:
            module = importlib.import_module(f"{_PACKAGE}.{name}.spec")
        except ModuleNotFoundError as error:
            raise SpecError(f"provider {name!r}: no module {error.name} ({error}).") from error
        spec = getattr(module, "SPEC", None)
        if not isinstance(spec, ProviderSpec):
            raise SpecError(f"provider {name!r}: {module.__name__}.SPEC must be a ProviderSpec.")
        if spec.kind != name:
            raise SpecError(f"provider {name!r}: its spec's kind is {spec.kind!r}; use the same.")
        if spec.kind in specs:
            raise SpecError(f"provider {name!r} is listed twice.")
        specs[spec.kind] = spec
    if not specs:
        raise SpecError("no providers are registered.")
    _check_unique(specs.values())
    return MappingProxyType(specs)


def _check_unique(specs: Iterable[ProviderSpec]) -> None:
    seen: dict[tuple[str, str], str] = {}
    for spec in specs:
        facts = [("simulator_path", spec.simulator_path), ("adapter", spec.adapter.__qualname__)]
        facts += [("model id", model.id) for model in spec.catalog.models]
        for what, value in facts:
            other = seen.setdefault((what, value), spec.kind)
            if other != spec.kind:
                raise SpecError(
                    f"providers {other!r} and {spec.kind!r} share the {what} {value!r}."
                )


PROVIDERS: Mapping[str, ProviderSpec] = load(INTEGRATIONS)
# What Channel.protocol defaults to, and a fresh install's first channel speaks.
DEFAULT_KIND = INTEGRATIONS[0]


def provider(kind: str) -> ProviderSpec:
    """The spec of a registered provider; ``UnknownProvider`` for any other kind."""
    try:
        return PROVIDERS[kind]
    except KeyError:
        raise UnknownProvider(
            f"No provider {kind!r} is registered (known: {', '.join(PROVIDERS)})."
        ) from None


def provider_choices() -> list[tuple[str, str]]:
    """Channel.protocol's choices; a callable, so migrations name it instead of copying them."""
    return [(spec.kind, spec.label) for spec in PROVIDERS.values()]


def provider_env_names() -> tuple[str, ...]:
    """Every key and base-URL variable the providers' SDK conventions read (tests clear them)."""
    return tuple(name for spec in PROVIDERS.values() for name in spec.env_names)
