"""Which unsuccessful generations the provider still charges for: the one table billing uses.

A reservation is *settled* (counted as spent) when the provider bills the job and *released*
(given back to the budget) when it does not. Completed generations are always settled and
canceled ones (never sent) always released; for failures the protocol's row below decides.

**openai_videos** charges, although no video came back:

* a render the provider reported finished whose files we then failed to fetch (it rendered, so
  it is billed);
* ``ambiguous_create``: the create may have started a paid job we could not find, so it is
  counted rather than risk an overspend; an admin refunds it with an adjustment if the
  provider's invoice shows no such job.

It does not charge for moderation, provider_failed, invalid_request, auth, quota_exhausted,
not_found, expired, network or rate_limited failures: those reservations are released. Evidence:
OpenAI published no statement on failed or moderated jobs (openai-videos-api.md section 4.2:
"treat as unknown"); the gateways that still serve the protocol, and the simulator, bill
completed jobs only.

For reference when adapters for other providers arrive (video-providers.md): Google Veo and
Omni say "you will not be charged if your video is blocked"; fal never charges server errors but
"a 422 may still be charged if a runner spent GPU time"; Runway does not document it.
"""

from __future__ import annotations

from dataclasses import dataclass

from workspace.providers.errors import ErrorClass
from workspace.providers.models import Protocol


@dataclass(frozen=True)
class BillingPolicy:
    # Failure classes counted as spent although no video came back.
    charged_failures: frozenset[str]
    # A render the provider reported finished is charged even if fetching its files failed.
    charges_finished_renders: bool


BILLING_POLICIES: dict[str, BillingPolicy] = {
    Protocol.OPENAI_VIDEOS: BillingPolicy(
        charged_failures=frozenset({ErrorClass.AMBIGUOUS_CREATE.value}),
        charges_finished_renders=True,
    ),
}
# A protocol missing from the table is treated like the strictest known one: an unknown
# failure is not assumed free.
_FALLBACK = BillingPolicy(
    charged_failures=frozenset({ErrorClass.AMBIGUOUS_CREATE.value}),
    charges_finished_renders=True,
)


def failure_is_charged(*, protocol: str, error_class: str, provider_finished: bool) -> bool:
    policy = BILLING_POLICIES.get(protocol, _FALLBACK)
    if provider_finished and policy.charges_finished_renders:
        return True
    return error_class in policy.charged_failures
