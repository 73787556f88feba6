"""What Reelhouse knows about one provider, in one place: its ``ProviderSpec``.

Each provider is a folder under ``workspace/providers/integrations/<kind>/`` (its adapter, its
catalog and a ``spec.py`` holding ``SPEC``) plus one line in ``registry.INTEGRATIONS``; the
channel choices, the base-URL and key lookups, the billing policy, the simulator's routes, the
admin's hints and the tests' environment isolation are all read from the specs.

A spec is checked when it is built, so a provider with a missing or malformed piece stops the
process at start instead of being found out later (a provider left out of a hand-kept billing
table used to get the "unknown" policy without anyone noticing).

No Django here: the simulator, which runs without settings, reads the registry too.
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass
from typing import ClassVar

from workspace.providers.adapters.base import HTTPAdapter
from workspace.providers.catalog import Catalog

# The stored value of Channel.protocol: short, lower-case, stable once rows use it.
KIND_PATTERN = re.compile(r"[a-z][a-z0-9_]{1,29}")
# The shape validators.key_env_problem demands of a key variable (its full rule needs settings).
_ENV_NAME_PATTERN = re.compile(r"[A-Z][A-Z0-9_]{1,79}")
_KEY_SUFFIXES = ("_KEY", "_SECRET", "_TOKEN")
# "package.module:ClassName", resolved by the simulator only (the web app never imports it).
_POINTER_PATTERN = re.compile(r"[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)+:[A-Za-z_][A-Za-z0-9_]*")
# Paths the simulator keeps for itself: its control endpoints and the shared file host.
RESERVED_SIMULATOR_PATHS = ("/_sim", "/cdn")


class SpecError(ValueError):
    """A provider spec is incomplete or malformed; raised while the registry loads."""


@dataclass(frozen=True)
class BillingPolicy:
    """Which unsuccessful generations the provider still charges for (see billing/policy.py)."""

    # Failure classes counted as spent although no video came back.
    charged_failures: frozenset[str]
    # Failure classes counted as spent only once the provider had accepted the job.
    charged_after_acceptance: frozenset[str] = frozenset()
    # A render the provider reported finished is charged even if fetching its files failed.
    charges_finished_renders: bool = True


@dataclass(frozen=True)
class ProviderSpec:
    """One provider: every per-provider fact the rest of Reelhouse looks up.

    Every field is required except ``webhooks`` and ``legacy``: leaving one out is a TypeError
    when the spec is built, a wrong type or shape a ``SpecError``.
    """

    # Stored in Channel.protocol; never rename once channels use it.
    kind: str
    # What the admin's choice list shows.
    label: str
    # The HTTPAdapter subclass that speaks the provider's API; its ``catalog`` is the models.
    adapter: type[HTTPAdapter]
    # The key's environment variable as the provider's official SDK names it.
    api_key_env: str
    # The environment variable the official SDK reads a base URL from, and the address used
    # when neither the channel nor that variable names one.
    base_url_env: str
    official_base_url: str
    # Which failures the provider still bills (billing/policy.py explains the common rules).
    billing: BillingPolicy
    # The simulated API ("module:Class", a core.SimulatedAPI) and the path it is mounted at;
    # a channel with no key talks to the simulator under that path.
    simulator: str
    simulator_path: str
    # The provider signs Standard Webhooks ("video.completed"/"video.failed") that
    # providers/webhooks.py understands; others are followed by polling alone.
    webhooks: bool = False
    # Why the surface is kept only for the channels that already use it (empty: it is current).
    # A legacy kind is not offered to a new channel nor to one switching protocol.
    legacy: str = ""

    _required_text: ClassVar[tuple[str, ...]] = (
        "kind",
        "label",
        "api_key_env",
        "base_url_env",
        "official_base_url",
        "simulator",
        "simulator_path",
    )

    def __post_init__(self) -> None:
        for name in self._required_text:
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                self._fail(f"{name} must be a non-empty string, not {value!r}")
        if not KIND_PATTERN.fullmatch(self.kind):
            self._fail("kind must be 2-30 lower-case letters, digits or underscores")
        if not (isinstance(self.adapter, type) and issubclass(self.adapter, HTTPAdapter)):
            self._fail(f"adapter must be an HTTPAdapter subclass, not {self.adapter!r}")
        if inspect.isabstract(self.adapter):
            missing = ", ".join(sorted(getattr(self.adapter, "__abstractmethods__", ())))
            self._fail(f"{self.adapter.__name__} does not implement {missing}")
        if self.adapter.classify is HTTPAdapter.classify:
            self._fail(f"{self.adapter.__name__} does not set classify (its error classifier)")
        catalog = getattr(self.adapter, "catalog", None)
        if not isinstance(catalog, Catalog) or not catalog.models:
            self._fail(f"{self.adapter.__name__}.catalog must be a Catalog with models")
        if not self.adapter.variants or self.adapter.variants[0] != "video":
            self._fail(f"{self.adapter.__name__}.variants must start with 'video'")
        if not (
            _ENV_NAME_PATTERN.fullmatch(self.api_key_env)
            and self.api_key_env.endswith(_KEY_SUFFIXES)
        ):
            self._fail(f"api_key_env {self.api_key_env!r} must end in _KEY, _SECRET or _TOKEN")
        if not _ENV_NAME_PATTERN.fullmatch(self.base_url_env):
            self._fail(f"base_url_env {self.base_url_env!r} is not an environment variable name")
        if not self.official_base_url.startswith("https://"):
            self._fail("official_base_url must be an https:// address")
        if not isinstance(self.billing, BillingPolicy):
            self._fail(f"billing must be a BillingPolicy, not {self.billing!r}")
        if not _POINTER_PATTERN.fullmatch(self.simulator):
            self._fail(f"simulator must name 'package.module:Class', not {self.simulator!r}")
        path = self.simulator_path
        if not re.fullmatch(r"(/[a-z0-9_-]+)+", path) or path.startswith(RESERVED_SIMULATOR_PATHS):
            self._fail(
                f"simulator_path {path!r} must be like /name and not one the simulator keeps"
            )
        if not isinstance(self.webhooks, bool):
            self._fail("webhooks must be True or False")
        if not isinstance(self.legacy, str):
            self._fail("legacy must be a string (why), or empty")

    def _fail(self, problem: str) -> None:
        raise SpecError(f"provider spec {getattr(self, 'kind', '?')!r}: {problem}.")

    @property
    def catalog(self) -> Catalog:
        return self.adapter.catalog

    @property
    def variants(self) -> tuple[str, ...]:
        """The files one finished job yields, the video first."""
        return self.adapter.variants

    @property
    def env_names(self) -> tuple[str, str]:
        """The environment variables this provider's SDK convention reads."""
        return (self.api_key_env, self.base_url_env)
