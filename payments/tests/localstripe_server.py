"""localstripe, with the one list filter Tripod's reconciliation uses that it lacks: PaymentIntents
by ``customer`` (real Stripe has it). Run as ``python -m payments.tests.localstripe_server --port N``."""

from typing import Any

from localstripe import resources, server  # type: ignore[import-untyped]

_list_all = resources.PaymentIntent._api_list_all


def _list_by_customer(cls: Any, url: str, customer: str | None = None, **kwargs: Any) -> Any:
    found = _list_all.__func__(cls, url, **kwargs)
    if customer is not None:
        found._list = [intent for intent in found._list if intent.customer == customer]
    return found


resources.PaymentIntent._api_list_all = classmethod(_list_by_customer)

if __name__ == "__main__":
    server.start()
