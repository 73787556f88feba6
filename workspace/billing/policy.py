"""Which unsuccessful generations the provider still charges for: the one table billing uses.

A reservation is *settled* (counted as spent) when the provider bills the job and *released*
(given back to the budget) when it does not. Completed generations are always settled and
canceled ones (never sent) always released; for failures the protocol's row below decides.
Every protocol counts as charged:

* a render the provider reported finished whose files we then failed to fetch (it rendered,
  so it is billed);
* ``ambiguous_create``: the create may have started a paid job we could not find, so it is
  counted rather than risk an overspend; an admin refunds it with an adjustment if the
  provider's invoice shows no such job.

Beyond that, per protocol (sources: ``shared/reference/video-providers.md`` and
``openai-videos-api.md``):

* **openai_videos**: nothing else. OpenAI published no statement on failed or moderated jobs
  (openai-videos-api.md section 4.2: "treat as unknown"); the gateways that still serve the
  protocol, and the simulator, bill completed jobs only. Moderation, provider failures, invalid
  requests, auth, quota, not-found and expiry failures are released.
* **gemini**: nothing else. Google: "You will not be charged if your video is blocked" and
  "You will only be charged if your video is successfully generated".
* **fal**: a 422 (``invalid_request``) of a job fal had accepted, because "a 422 may still be
  charged if a runner spent GPU time"; server errors are "never charged".
* **runway**: undocumented ("whether a failed or moderated task is charged is not
  documented"), so moderation and provider failures of accepted tasks are counted until
  someone checks the organisation's usage endpoint; budgets then never overspend.
* **luma**: undocumented as well. Luma's error guide names ``budget_exhausted`` ("ran out of
  funds mid-generation"), so spending happens while a generation runs, but says nothing of
  whether a moderated or failed one is billed. Moderation and provider failures of accepted
  generations, including the retryable ``generation_failed``/``output_not_found`` (classed
  ``overloaded``), are counted until Luma's usage report shows otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

from workspace.providers.errors import ErrorClass


@dataclass(frozen=True)
class BillingPolicy:
    # Failure classes counted as spent although no video came back.
    charged_failures: frozenset[str]
    # Failure classes counted as spent only once the provider had accepted the job.
    charged_after_acceptance: frozenset[str] = frozenset()
    # A render the provider reported finished is charged even if fetching its files failed.
    charges_finished_renders: bool = True


_ALWAYS = frozenset({ErrorClass.AMBIGUOUS_CREATE.value})

BILLING_POLICIES: dict[str, BillingPolicy] = {
    "openai_videos": BillingPolicy(charged_failures=_ALWAYS),
    "gemini": BillingPolicy(charged_failures=_ALWAYS),
    "fal": BillingPolicy(
        charged_failures=_ALWAYS,
        charged_after_acceptance=frozenset({ErrorClass.INVALID_REQUEST.value}),
    ),
    "runway": BillingPolicy(
        charged_failures=_ALWAYS,
        charged_after_acceptance=frozenset(
            {ErrorClass.MODERATION.value, ErrorClass.PROVIDER_FAILED.value}
        ),
    ),
    "luma": BillingPolicy(
        charged_failures=_ALWAYS,
        charged_after_acceptance=frozenset(
            {
                ErrorClass.MODERATION.value,
                ErrorClass.PROVIDER_FAILED.value,
                ErrorClass.OVERLOADED.value,
            }
        ),
    ),
}
# A protocol missing from the table: a failure after the provider accepted the job is not
# assumed free.
_UNKNOWN = BillingPolicy(
    charged_failures=_ALWAYS,
    charged_after_acceptance=frozenset(
        {
            ErrorClass.MODERATION.value,
            ErrorClass.PROVIDER_FAILED.value,
            ErrorClass.INVALID_REQUEST.value,
        }
    ),
)


def failure_is_charged(
    *, protocol: str, error_class: str, provider_finished: bool, provider_accepted: bool = False
) -> bool:
    policy = BILLING_POLICIES.get(protocol, _UNKNOWN)
    if provider_finished and policy.charges_finished_renders:
        return True
    if provider_accepted and error_class in policy.charged_after_acceptance:
        return True
    return error_class in policy.charged_failures
