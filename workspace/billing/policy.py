"""Which unsuccessful generations the provider still charges for.

A reservation is *settled* (counted as spent) when the provider bills the job and *released*
(given back to the budget) when it does not. Completed generations are always settled and
canceled ones (never sent) always released; for failures the provider's ``BillingPolicy`` (in
its spec, ``workspace/providers/integrations/<kind>/spec.py``, with its sources) decides.
Every provider's policy counts as charged:

* a render the provider reported finished whose files we then failed to fetch (it rendered,
  so it is billed);
* ``ambiguous_create``: the create may have started a paid job we could not find, so it is
  counted rather than risk an overspend; an admin refunds it with an adjustment if the
  provider's invoice shows no such job.

Where the provider reports what a finished job cost (``Generation.provider_reported_cost_cents``,
Runway's ``cost.credits``), that figure decides instead: a failure reported at 0 is released, any
other is settled at the reported amount (``billing.services.reservation_close_failed``). The
policies below are for the providers and jobs that report nothing.

Every registered provider has a policy: the spec cannot be built without one. Only a kind no
provider is registered under (a channel row left from a removed provider) has none; its failures
after acceptance are then counted, never assumed free, and the log says so.
"""

from __future__ import annotations

import logging

from workspace.providers.errors import ErrorClass
from workspace.providers.registry import UnknownProvider, provider
from workspace.providers.spec import BillingPolicy

logger = logging.getLogger(__name__)

UNREGISTERED = BillingPolicy(
    charged_failures=frozenset({ErrorClass.AMBIGUOUS_CREATE.value}),
    charged_after_acceptance=frozenset(
        {
            ErrorClass.MODERATION.value,
            ErrorClass.PROVIDER_FAILED.value,
            ErrorClass.INVALID_REQUEST.value,
        }
    ),
)


def billing_policy(kind: str) -> BillingPolicy:
    try:
        return provider(kind).billing
    except UnknownProvider:
        logger.error(
            "billing: no provider %r is registered; counting its failures as charged", kind
        )
        return UNREGISTERED


def failure_is_charged(
    *, kind: str, error_class: str, provider_finished: bool, provider_accepted: bool = False
) -> bool:
    """Whether a failed generation of a channel of this provider ``kind`` is counted as spent."""
    policy = billing_policy(kind)
    if provider_finished and policy.charges_finished_renders:
        return True
    if provider_accepted and error_class in policy.charged_after_acceptance:
        return True
    return error_class in policy.charged_failures
