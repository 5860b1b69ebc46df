"""Where a webhook may go: an ``https`` URL whose host resolves only to public addresses.

A tenant must not make Tripod call into its own network (the metadata service at 169.254.169.254,
a database on 10.0.0.5, Tripod itself on 127.0.0.1). The URL is checked when an endpoint is saved,
and its host resolved and checked again at every try, because a name can resolve elsewhere later
(DNS rebinding); the try then connects to the very address that was checked, never resolving the
name a second time. ``WEBHOOKS_ALLOW_PRIVATE_TARGETS`` (on under DEBUG and in tests) lifts both
rules for development: plain ``http`` and private addresses (a receiver on 127.0.0.1).
"""

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from django.conf import settings

from billing_platform.errors import FieldError
from webhooks.errors import InvalidWebhookEndpoint

URL_MAX_LENGTH = 2000


class TargetRefused(Exception):
    """The target may not be called (at delivery time: a try that fails without connecting)."""


@dataclass(frozen=True)
class Target:
    """A URL taken apart, with the address the try connects to."""

    scheme: str
    host: str  # as written, the name TLS checks the certificate against
    port: int
    path: str  # path and query string, what the request line carries
    address: str  # the resolved IP address that was checked

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        host = "[%s]" % self.host if ":" in self.host else self.host
        return host if self.port == default else "%s:%d" % (host, self.port)


def private_targets_allowed() -> bool:
    return bool(getattr(settings, "WEBHOOKS_ALLOW_PRIVATE_TARGETS", False))


def address_refused(address: str) -> bool:
    """Anything but a global unicast address: private (10/8, 172.16/12, 192.168/16, fc00::/7),
    loopback, link-local (169.254/16 with the cloud metadata services, fe80::/10), shared
    (100.64/10), reserved, unspecified, multicast. An IPv4 address written as IPv6 is judged as IPv4."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # an IPv6 scope (fe80::1%eth0) is link-local anyway
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


def _parts(url: str) -> SplitResult:
    """The URL's parts, or ``InvalidWebhookEndpoint`` saying what is wrong with it."""

    def refuse(code: str, message: str) -> InvalidWebhookEndpoint:
        return InvalidWebhookEndpoint(message, errors=[FieldError("url", code, message)])

    if len(url) > URL_MAX_LENGTH:
        raise refuse("too_long", "A URL has at most %d characters." % URL_MAX_LENGTH)
    if any(c.isspace() for c in url):
        raise refuse("invalid_url", "A URL has no spaces.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise refuse("invalid_url", "This is not a URL.") from None
    allowed = ("https", "http") if private_targets_allowed() else ("https",)
    if parts.scheme not in allowed:
        raise refuse("https_required", "The URL must start with https://.")
    if not parts.hostname:
        raise refuse("invalid_url", "The URL has no host.")
    if parts.username is not None or parts.password is not None:
        raise refuse("credentials_in_url", "Put no user or password in the URL: verify the signature instead.")
    if parts.fragment:
        raise refuse("invalid_url", "A webhook URL has no #fragment.")
    if port == 0:
        raise refuse("invalid_url", "The port must be between 1 and 65535.")
    return parts


def resolve(host: str, port: int) -> list[str]:
    """The host's addresses (an IP address written in the URL is its own). ``OSError`` when the
    name does not resolve."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    addresses: list[str] = []
    for info in infos:
        address = str(info[4][0])
        if address not in addresses:
            addresses.append(address)
    return addresses


def _checked_address(host: str, port: int) -> str:
    """The address to connect to: the first one, once every address the name has is allowed. A
    name with one private address among public ones is refused: which one a client picks is not
    in our hands."""
    try:
        addresses = resolve(host, port)
    except (OSError, UnicodeError) as exc:
        raise TargetRefused("%s does not resolve: %s" % (host, exc)) from None
    if not addresses:
        raise TargetRefused("%s does not resolve." % host)
    if not private_targets_allowed():
        refused = [a for a in addresses if address_refused(a)]
        if refused:
            raise TargetRefused("%s resolves to a private or reserved address (%s)." % (host, refused[0]))
    return addresses[0]


def url_check(url: str) -> str:
    """An endpoint's URL as it is saved: well formed, ``https``, and (unless private targets are
    allowed) a host that resolves to public addresses only. Raises ``InvalidWebhookEndpoint`` (422)."""
    url = url.strip()
    parts = _parts(url)
    if private_targets_allowed():
        return url
    host = parts.hostname or ""
    port = parts.port or 443
    try:
        _checked_address(host, port)
    except TargetRefused as exc:
        code = "private_address" if "private" in str(exc) else "unresolvable_host"
        raise InvalidWebhookEndpoint(str(exc), errors=[FieldError("url", code, str(exc))]) from None
    return url


def target_for(url: str) -> Target:
    """The target of a try: the URL checked again and its host resolved now, to the address the
    try connects to. Raises ``TargetRefused``."""
    try:
        parts = _parts(url)
    except InvalidWebhookEndpoint as exc:
        raise TargetRefused(exc.detail) from None
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(parts.scheme, host, port, path, _checked_address(host, port))
