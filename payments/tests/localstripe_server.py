"""localstripe for Tripod's tests, with what it lacks and Tripod uses. Test-only; never deployed.

- The list filters real Stripe has: PaymentIntents by ``customer``; PaymentMethods of every type
  (localstripe lists cards only, and only when asked for ``type=card``).
- A **Checkout stand-in** (localstripe has no Checkout Sessions): ``POST /v1/checkout/sessions``
  and ``GET /v1/checkout/sessions/{id}`` keep sessions in memory, honouring ``Idempotency-Key`` as
  Stripe does; the session's ``url`` is the stand-in's own page ``GET /checkout/{id}``, whose
  button takes the money (payment mode: a PaymentIntent confirmed with the test card and the
  session's ``payment_intent_data.metadata``) or saves the method (setup mode: a SetupIntent
  confirmed with a test card, or a test IBAN), then sends a ``checkout.session.completed`` event
  signed as Stripe signs (``Stripe-Signature: t=…,v1=HMAC-SHA256(secret, "t.payload")``) to the
  webhook URL given at start, and redirects to ``success_url``.

Run as ``python -m payments.tests.localstripe_server --port N [--webhook-url URL --webhook-secret
whsec_…]`` (or ``CHECKOUT_WEBHOOK_URL`` / ``CHECKOUT_WEBHOOK_SECRET`` in the environment)."""

import argparse
import hashlib
import hmac
import html
import json
import os
import sys
import time
from typing import Any

from aiohttp import ClientSession, web
from localstripe import resources, server  # type: ignore[import-untyped]
from localstripe.errors import UserError  # type: ignore[import-untyped]

_list_all = resources.PaymentIntent._api_list_all


def _list_by_customer(cls: Any, url: str, customer: str | None = None, **kwargs: Any) -> Any:
    found = _list_all.__func__(cls, url, **kwargs)
    if customer is not None:
        found._list = [intent for intent in found._list if intent.customer == customer]
    return found


resources.PaymentIntent._api_list_all = classmethod(_list_by_customer)


def _payment_methods_of(
    cls: Any, url: str, customer: str | None = None, type: str | None = None, limit: Any = None, **kwargs: Any
) -> Any:
    if not isinstance(customer, str) or not customer.startswith("cus_") or type not in (None, "card", "sepa_debit"):
        raise UserError(400, "Bad request")
    resources.Customer._api_retrieve(customer)  # 404 for an unknown customer
    found = resources.StripeObject._api_list_all.__func__(cls, url, limit=limit, **kwargs)
    found._list = [m for m in found._list if m.customer == customer and (type is None or m.type == type)]
    return found


resources.PaymentMethod._api_list_all = classmethod(_payment_methods_of)


# --- the Checkout stand-in -----------------------------------------------------------------------

TEST_CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2034, "cvc": "123"}
TEST_IBAN = "DE89370400440532013000"  # Stripe's SEPA test account that succeeds
SESSIONS: dict[str, dict[str, Any]] = {}
IDEMPOTENT: dict[tuple[str, str], str] = {}
WEBHOOK: dict[str, str] = {"url": "", "secret": ""}


def _session_create(data: dict[str, Any], base: str) -> dict[str, Any]:
    mode = data.get("mode")
    if mode not in ("payment", "setup") or not data.get("success_url") or not data.get("cancel_url"):
        raise UserError(400, "Bad request: mode, success_url and cancel_url are required")
    customer = data.get("customer")
    if customer is not None:
        resources.Customer._api_retrieve(customer)  # 404 for an unknown customer
    amount, currency = None, data.get("currency")
    if mode == "payment":
        items = data.get("line_items") or []
        try:
            amount = sum(int(i["price_data"]["unit_amount"]) * int(i.get("quantity", 1)) for i in items)
            currency = items[0]["price_data"]["currency"]
        except (KeyError, IndexError, TypeError, ValueError):
            raise UserError(400, "Bad request: line_items with price_data are required") from None
        if amount <= 0:
            raise UserError(400, "Bad request: the amount must be positive")
    session_id = "cs_test_" + resources.random_id(24)
    return {
        "id": session_id,
        "object": "checkout.session",
        "mode": mode,
        "customer": customer,
        "amount_total": amount,
        "currency": currency,
        "metadata": data.get("metadata") or {},
        "payment_intent_data": data.get("payment_intent_data") or {},
        "allowed_payment_method_types": data.get("allowed_payment_method_types"),
        # What the page offers: the allowed types (Stripe's current API), or the older explicit list.
        "payment_method_types": data.get("allowed_payment_method_types")
        or data.get("payment_method_types")
        or ["card"],
        "success_url": data["success_url"],
        "cancel_url": data["cancel_url"],
        "url": "%s/checkout/%s" % (base, session_id),
        "status": "open",
        "payment_status": "unpaid" if mode == "payment" else "no_payment_required",
        "payment_intent": None,
        "setup_intent": None,
        "created": int(time.time()),
        "livemode": False,
    }


def _public(session: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in session.items() if k != "payment_intent_data"}


async def sessions_create(request: web.Request) -> web.Response:
    data = await server.get_post_data(request) or {}
    key = (request.headers.get("Authorization", ""), request.headers.get("Idempotency-Key", ""))
    if key[1] and key in IDEMPOTENT:
        return server.json_response(_public(SESSIONS[IDEMPOTENT[key]]))
    session = _session_create(data, str(request.url.origin()))
    SESSIONS[session["id"]] = session
    if key[1]:
        IDEMPOTENT[key] = session["id"]
    return server.json_response(_public(session))


def _session(request: web.Request) -> dict[str, Any]:
    session = SESSIONS.get(request.match_info["id"])
    if session is None:
        raise UserError(404, "No such checkout.session")
    return session


async def sessions_retrieve(request: web.Request) -> web.Response:
    return server.json_response(_public(_session(request)))


def _page(session: dict[str, Any], error: str = "") -> web.Response:
    if session["mode"] == "payment":
        what = "Pay %s %s" % (
            "%.2f" % (session["amount_total"] / 100),  # test currencies have 2 decimals
            str(session["currency"]).upper(),
        )
        fields = '<label>Card number <input name="card" value="%s"></label>' % TEST_CARD["number"]
        button = "Pay"
    else:
        what = "Save a payment method"
        choices = ['<label><input type="radio" name="method" value="card" checked> Card</label>']
        if "sepa_debit" in session["payment_method_types"]:
            choices.append('<label><input type="radio" name="method" value="sepa_debit"> SEPA debit</label>')
        fields = "".join(choices)
        button = "Save"
    body = (
        "<!doctype html><html><head><title>Checkout stand-in</title></head><body>"
        "<h1>%s</h1>%s<form method=post>%s<button type=submit>%s</button></form>"
        '<p><a href="%s">Cancel</a></p></body></html>'
    ) % (
        html.escape(what),
        '<p role="alert">%s</p>' % html.escape(error) if error else "",
        fields,
        button,
        html.escape(session["cancel_url"]),
    )
    return web.Response(text=body, content_type="text/html", status=402 if error else 200)


async def checkout_page(request: web.Request) -> web.Response:
    return _page(_session(request))


def _complete(session: dict[str, Any], form: Any) -> None:
    """Take the money, or save the method, in localstripe; the session becomes complete."""
    if session["mode"] == "payment":
        card = dict(TEST_CARD, number=str(form.get("card") or TEST_CARD["number"]).replace(" ", ""))
        method = resources.PaymentMethod(type="card", card=card)
        intent = resources.PaymentIntent._api_create(
            amount=session["amount_total"],
            currency=session["currency"],
            customer=session["customer"],
            payment_method=method.id,
            metadata=dict(session["payment_intent_data"].get("metadata") or session["metadata"]),
            confirm=True,
        )
        session["payment_intent"] = intent.id
        session["payment_status"] = "paid"
    else:
        intent = resources.SetupIntent(
            customer=session["customer"], payment_method_types=session["payment_method_types"]
        )
        if form.get("method") == "sepa_debit":
            data: dict[str, Any] = {"type": "sepa_debit", "sepa_debit": {"iban": TEST_IBAN}}
        else:
            data = {"type": "card", "card": dict(TEST_CARD)}
        resources.SetupIntent._api_confirm(intent.id, payment_method_data=data)
        session["setup_intent"] = intent.id
    session["status"] = "complete"


def stripe_signature(payload: bytes, secret: str, timestamp: int) -> str:
    signed = hmac.new(secret.encode(), b"%d." % timestamp + payload, hashlib.sha256).hexdigest()
    return "t=%d,v1=%s" % (timestamp, signed)


async def _send_completed(session: dict[str, Any]) -> None:
    """``checkout.session.completed`` to the webhook given at start, awaited on the event loop (the
    receiver may call back into this very server while it handles the event)."""
    if not WEBHOOK["url"]:
        return
    now = int(time.time())
    event = {
        "id": "evt_" + resources.random_id(24),
        "object": "event",
        "type": "checkout.session.completed",
        "api_version": "2024-06-20",
        "created": now,
        "livemode": False,
        "data": {"object": _public(session)},
    }
    payload = json.dumps(event).encode()
    headers = {
        "Content-Type": "application/json",
        "Stripe-Signature": stripe_signature(payload, WEBHOOK["secret"], now),
    }
    async with ClientSession() as client, client.post(WEBHOOK["url"], data=payload, headers=headers) as answer:
        if answer.status >= 300:
            raise UserError(502, "The webhook answered %d: %s" % (answer.status, (await answer.text())[:300]))


async def checkout_submit(request: web.Request) -> web.StreamResponse:
    session = _session(request)
    if session["status"] != "open":
        return _page(session, "This checkout session is %s." % session["status"])
    form = await request.post()
    try:
        _complete(session, form)
    except UserError as exc:
        return _page(session, str(exc.body.get("error", {}).get("message", "Declined")))
    if session["mode"] == "payment" and resources.PaymentIntent._api_retrieve(session["payment_intent"]).status != (
        "succeeded"
    ):
        session["status"], session["payment_status"] = "open", "unpaid"
        return _page(session, "Your card was declined.")
    await _send_completed(session)
    raise web.HTTPSeeOther(session["success_url"].replace("{CHECKOUT_SESSION_ID}", session["id"]))


@web.middleware
async def _checkout_pages_open(request: web.Request, handler: Any) -> web.StreamResponse:
    """The hosted page is opened by the customer's browser, without a secret key."""
    if request.path.startswith("/checkout/"):
        return await handler(request)
    return await server.auth_middleware(request, handler)


server.app.middlewares[server.app.middlewares.index(server.auth_middleware)] = _checkout_pages_open
server.app.router.add_post("/v1/checkout/sessions", sessions_create)
server.app.router.add_get("/v1/checkout/sessions/{id}", sessions_retrieve)
server.app.router.add_get("/checkout/{id}", checkout_page)
server.app.router.add_post("/checkout/{id}", checkout_submit)


def main() -> None:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--webhook-url", default=os.environ.get("CHECKOUT_WEBHOOK_URL", ""))
    parser.add_argument("--webhook-secret", default=os.environ.get("CHECKOUT_WEBHOOK_SECRET", ""))
    ours, rest = parser.parse_known_args()
    WEBHOOK.update(url=ours.webhook_url, secret=ours.webhook_secret)
    sys.argv[1:] = rest  # the rest is localstripe's own (--port, --from-scratch)
    server.start()


if __name__ == "__main__":
    main()
