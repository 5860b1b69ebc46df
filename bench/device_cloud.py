"""A simulated device cloud: sends signed device webhooks to Tripod, and receives Tripod's.

Sending (the default) and receiving (``receive``) are described below in turn.

It posts one Standard Webhooks-signed event per device to ``POST /api/v1/webhooks/device-cloud``
and prints each response's status and body. The signature is made with the ``standardwebhooks``
library. HTTP goes through ``urllib.request`` only, straight to ``--url``: no proxy, no redirect.

A network error or a 5xx is retried up to ``--retries`` times (default 3), with exponential
backoff (0.5 s, 1 s, 2 s ..., at most 8 s). A retry keeps the same ``webhook-id`` and body and
gets a fresh ``webhook-timestamp`` and signature. A 4xx is never retried.

The ``webhook-id`` is derived from the event (type, device, instant in UTC), so sending the same
event again, in this run with ``--replay`` or in a later run with the same ``--at``, is a replay:
Tripod answers ``200`` with the webhook it stored the first time.

Usage (from the repository root)::

    .venv/bin/python bench/device_cloud.py --tenant smart-fleet --secret 'whsec_...' \\
        --devices A,B,C --event device.activated --at 2026-03-15T09:00:00+01:00

    # with a device_cloud-scope API key instead of ?tenant=, as CloudEvents, sent twice
    TRIPOD_DEVICE_CLOUD_SECRET='whsec_...' .venv/bin/python bench/device_cloud.py \\
        --api-key 'tpk_...' --devices A --event device.shipped --cloudevents --replay

``--secret`` and ``--api-key`` default to the environment variables
``TRIPOD_DEVICE_CLOUD_SECRET`` and ``TRIPOD_API_KEY``. The exit status is 0 when every request
got a 2xx answer, 1 otherwise.

Receiving: ``receive`` listens for Tripod's outbound webhooks, as the device cloud would, verifies
each with the reference ``standardwebhooks`` library and the endpoint's secret (several with
``--secret`` given more than once, for a rotation), deduplicates by ``webhook-id``, answers 2xx, and
prints what it got: suspensions and reactivations (the device ids whose service to cut or
restore), devices starting to be billed, and every other event type with its data. A message that
fails verification is answered 401 and printed as refused. ``--fail-first N`` answers 503 to the
first N messages, to watch Tripod retry them (5 s, 5 min, 30 min...)::

    # make the endpoint (the secret is shown once), then listen on it
    curl -s -X POST http://127.0.0.1:8000/api/v1/webhook_endpoints -H "Authorization: Bearer $TRIPOD_API_KEY" \\
        -H 'Content-Type: application/json' -d '{"url": "http://127.0.0.1:8470/tripod", "events": ["*"]}'
    .venv/bin/python bench/device_cloud.py receive --port 8470 --secret 'whsec_...'

Tripod calls http and 127.0.0.1 only with ``WEBHOOKS_ALLOW_PRIVATE_TARGETS`` on (it is under
``DJANGO_DEBUG``, hence ``make run``). ``--secret`` defaults to ``$TRIPOD_WEBHOOK_SECRET``.
"""

import argparse
import hashlib
import http.client
import json
import os
import random
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook

PATH = "/api/v1/webhooks/device-cloud"
EVENT_TYPES = ("device.activated", "device.shipped", "device.deactivated")
BACKOFF_BASE = 0.5  # seconds before the first retry
BACKOFF_CAP = 8.0  # no wait is longer than this
NETWORK_ERRORS = (urllib.error.URLError, TimeoutError, ConnectionError, http.client.HTTPException)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Answer a 3xx as it is: the script talks to the given URL only."""

    def redirect_request(self, req: Any, fp: Any, code: Any, msg: Any, headers: Any, newurl: Any) -> None:
        return None


# No proxy from the environment and no redirects: only the URL given on the command line is contacted.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())


def parse_instant(value: str) -> datetime:
    try:
        instant = datetime.fromisoformat(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 instant: {value!r}") from exc
    if instant.tzinfo is None:
        raise argparse.ArgumentTypeError(f"give the offset too, e.g. {value}+01:00 or {value}Z")
    return instant


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Send signed device-cloud webhooks (Standard Webhooks) to Tripod.",
        epilog="Example: --tenant smart-fleet --secret whsec_... --devices A,B --at 2026-03-15T09:00:00+01:00",
    )
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="Tripod's base URL (default: %(default)s)")
    who = parser.add_mutually_exclusive_group()
    who.add_argument("--tenant", help="tenant slug, sent as ?tenant=<slug> (no API key)")
    who.add_argument(
        "--api-key",
        default=os.environ.get("TRIPOD_API_KEY"),
        help="API key with scope device_cloud, sent as a Bearer token (default: $TRIPOD_API_KEY)",
    )
    parser.add_argument(
        "--secret",
        default=os.environ.get("TRIPOD_DEVICE_CLOUD_SECRET"),
        help="the tenant's device-cloud secret, whsec_... (default: $TRIPOD_DEVICE_CLOUD_SECRET)",
    )
    parser.add_argument("--devices", required=True, help="comma-separated device ids, e.g. A,B,C")
    parser.add_argument("--event", choices=EVENT_TYPES, default="device.activated", help="default: %(default)s")
    parser.add_argument(
        "--at",
        type=parse_instant,
        default=None,
        help="when it happened, ISO 8601 with offset (default: now)",
    )
    parser.add_argument(
        "--cloudevents",
        action="store_true",
        help="send a structured CloudEvent (application/cloudevents+json) instead of plain JSON",
    )
    parser.add_argument("--replay", action="store_true", help="send each webhook a second time (same webhook-id)")
    parser.add_argument("--retries", type=int, default=3, help="retries on a network error or a 5xx (0 to 5)")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per request (default: %(default)s)")
    args = parser.parse_args(argv)

    url = urllib.parse.urlsplit(args.url)
    if url.scheme not in ("http", "https") or not url.netloc:
        parser.error("--url must look like http://127.0.0.1:8000")
    if not (args.tenant or args.api_key):
        parser.error("give --tenant or --api-key (or set TRIPOD_API_KEY)")
    if not args.secret:
        parser.error("give --secret (or set TRIPOD_DEVICE_CLOUD_SECRET)")
    try:
        Webhook(args.secret)
    except Exception as exc:  # the library raises binascii.Error or its own error on a bad secret
        parser.error(f"--secret is not a Standard Webhooks secret (whsec_ + base64): {exc}")
    args.devices = [d.strip() for d in args.devices.split(",") if d.strip()]
    if not args.devices:
        parser.error("--devices names no device")
    if not 0 <= args.retries <= 5:
        parser.error("--retries must be between 0 and 5")
    args.at = args.at or datetime.now(UTC).replace(microsecond=0)
    return args


def endpoint(base_url: str, tenant: str | None) -> str:
    url = base_url.rstrip("/") + PATH
    return url + "?" + urllib.parse.urlencode({"tenant": tenant}) if tenant else url


def stable_webhook_id(event_type: str, device_id: str, at: datetime) -> str:
    """One id per event, whatever the offset the instant is written with: resending it is a replay."""
    key = f"{event_type}|{device_id}|{at.astimezone(UTC).isoformat()}"
    return "msg_" + hashlib.sha256(key.encode()).hexdigest()[:32]


def event_body(event_type: str, device_id: str, at: datetime, *, cloudevents: bool, webhook_id: str) -> bytes:
    occurred_at = at.isoformat()
    payload: dict[str, Any]
    if cloudevents:
        payload = {
            "specversion": "1.0",
            "id": webhook_id,
            "source": "//device-cloud.bench.invalid",
            "type": event_type,
            "subject": device_id,
            "time": occurred_at,
            "datacontenttype": "application/json",
            "data": {},
        }
    else:
        payload = {"type": event_type, "data": {"device_id": device_id, "occurred_at": occurred_at}}
    return json.dumps(payload, separators=(",", ":")).encode()


def signed_headers(secret: str, webhook_id: str, body: bytes) -> dict[str, str]:
    """Fresh timestamp and signature: called again for every attempt."""
    sent_at = datetime.now(UTC)  # a UTC datetime: the library reads it as UTC
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": Webhook(secret).sign(webhook_id, sent_at, body.decode()),
    }


def post_once(url: str, body: bytes, headers: dict[str, str], timeout: float) -> tuple[int, str]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with OPENER.open(request, timeout=timeout) as response:
            return response.status, response.read().decode("utf-8", errors="replace")
    except urllib.error.HTTPError as exc:  # a 3xx, 4xx or 5xx: an answer, not a network error
        with exc:
            return exc.code, exc.read().decode("utf-8", errors="replace")


def send(args: argparse.Namespace, url: str, device_id: str, webhook_id: str) -> int | None:
    """Post one webhook, retrying network errors and 5xx. Returns the final status, None if none came."""
    body = event_body(args.event, device_id, args.at, cloudevents=args.cloudevents, webhook_id=webhook_id)
    content_type = "application/cloudevents+json" if args.cloudevents else "application/json"
    for attempt in range(args.retries + 1):
        headers = {
            "Content-Type": content_type,
            "Accept": "application/json",
            **signed_headers(args.secret, webhook_id, body),
        }
        if args.api_key and not args.tenant:
            headers["Authorization"] = f"Bearer {args.api_key}"
        print(f"-> POST {url}  {args.event} device={device_id} webhook-id={webhook_id} attempt={attempt + 1}")
        status: int | None = None
        try:
            status, text = post_once(url, body, headers, args.timeout)
        except NETWORK_ERRORS as exc:
            print(f"<- network error: {exc}")
        else:
            print(f"<- {status} {pretty(text)}")
            if status < 500:
                return status
        if attempt < args.retries:
            delay = min(BACKOFF_BASE * 2**attempt, BACKOFF_CAP)
            delay += random.uniform(0, delay / 4)  # a little jitter
            print(f"   retrying in {delay:.1f} s with the same webhook-id and a fresh signature")
            time.sleep(delay)
    print(f"   giving up on {webhook_id} after {args.retries + 1} attempts")
    return status


def pretty(text: str) -> str:
    try:
        return json.dumps(json.loads(text), ensure_ascii=False)
    except ValueError:
        return text[:2000]


# --- receiving Tripod's webhooks -----------------------------------------------------------------

MAX_BODY = 1_048_576  # a larger body is refused (413) unread


def parse_receive_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="device_cloud.py receive",
        description="Receive Tripod's outbound webhooks, verify them (Standard Webhooks) and print them.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    parser.add_argument("--port", type=int, default=8470, help="default: %(default)s")
    parser.add_argument(
        "--secret",
        action="append",
        default=[],
        help="the endpoint's signing secret, whsec_...; twice during a rotation (default: $TRIPOD_WEBHOOK_SECRET)",
    )
    parser.add_argument("--fail-first", type=int, default=0, help="answer 503 to the first N messages (to see retries)")
    args = parser.parse_args(argv)
    secrets = args.secret or [s for s in [os.environ.get("TRIPOD_WEBHOOK_SECRET", "")] if s]
    if not secrets:
        parser.error("give --secret (or set TRIPOD_WEBHOOK_SECRET): the endpoint's secret, shown at its creation")
    try:
        args.webhooks = [Webhook(secret) for secret in secrets]
    except Exception as exc:  # the library raises binascii.Error or its own error on a bad secret
        parser.error(f"--secret is not a Standard Webhooks secret (whsec_ + base64): {exc}")
    return args


def verify(webhooks: list[Webhook], body: bytes, headers: dict[str, str]) -> dict[str, Any]:
    """The message's JSON once a secret verifies it; raises the library's error otherwise."""
    error: Exception | None = None
    for webhook in webhooks:
        try:
            payload: dict[str, Any] = webhook.verify(body, headers)
            return payload
        except Exception as exc:  # WebhookVerificationError, or a garbled header
            error = exc
    raise error or ValueError("no secret")


def describe(payload: dict[str, Any]) -> str:
    """One line for an event: what the device cloud does about it."""
    event_type = str(payload.get("type", ""))
    data = payload.get("data") if isinstance(payload.get("data"), dict) else {}
    assert isinstance(data, dict)
    devices = ", ".join(str(d) for d in data.get("devices") or []) or "no device"
    if event_type == "subscription.suspended":
        return f"SUSPEND service of {devices} (subscription {data.get('external_id')}, customer {data.get('customer')})"
    if event_type == "subscription.reactivated":
        return (
            f"REACTIVATE service of {devices} (subscription {data.get('external_id')}, customer {data.get('customer')})"
        )
    if event_type == "subscription.cancelled":
        return f"cancelled: subscription {data.get('external_id')}, devices {devices}"
    if event_type == "device.billing_started":
        return (
            f"device {data.get('device_id')} billed from {data.get('billing_started_at')} "
            f"({data.get('trigger')}, subscription {data.get('subscription')})"
        )
    if event_type.startswith(("invoice.", "credit_note.")):
        return f"{data.get('number')} of {data.get('customer')}: {data.get('total')} {data.get('currency')}"
    return json.dumps(data, ensure_ascii=False)[:2000]


def receive(argv: list[str]) -> int:
    args = parse_receive_args(argv)
    seen: set[str] = set()
    counter = {"received": 0}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                self.answer(413, "too large")
                return
            body = self.rfile.read(length)
            headers = {k.lower(): v for k, v in self.headers.items()}
            webhook_id = headers.get("webhook-id", "?")
            counter["received"] += 1
            if counter["received"] <= args.fail_first:
                print(f"<- {webhook_id}: answering 503 on purpose ({counter['received']}/{args.fail_first})")
                self.answer(503, "try again later")
                return
            try:
                payload = verify(args.webhooks, body, headers)
            except Exception as exc:
                print(f"<- {webhook_id}: REFUSED, {exc}")
                self.answer(401, "bad signature")
                return
            if webhook_id in seen:
                print(f"<- {webhook_id}: duplicate of a message already handled, ignored")
                self.answer(200, "duplicate")
                return
            seen.add(webhook_id)
            print(f"<- {payload.get('type')} at {payload.get('timestamp')} [{webhook_id}]: {describe(payload)}")
            sys.stdout.flush()
            self.answer(200, "ok")

        def answer(self, status: int, text: str) -> None:
            data = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *log_args: Any) -> None:
            pass

    server = ThreadingHTTPServer((args.host, args.port), Handler)
    print(f"listening on http://{args.host}:{server.server_address[1]}/ for Tripod's webhooks (Ctrl-C stops)")
    sys.stdout.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["receive"]:
        return receive(argv[1:])
    args = parse_args(argv)
    url = endpoint(args.url, args.tenant)
    ok = True
    for device_id in args.devices:
        webhook_id = stable_webhook_id(args.event, device_id, args.at)
        for _ in range(2 if args.replay else 1):
            status = send(args, url, device_id, webhook_id)
            ok = ok and status is not None and 200 <= status < 300
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
