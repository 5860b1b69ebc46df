"""The Content-Security-Policy: this host's own files only, on the back-office and the API
reference; and no template relies on what it forbids (inline scripts, styles, event handlers)."""

import re
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.test import Client

from tenancy.models import Tenant

pytestmark = pytest.mark.django_db

POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "font-src": "'self'",
    "connect-src": "'self'",
    "frame-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'none'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}


def directives(response: Any) -> dict[str, str]:
    """The policy's directives by name (django-csp writes them in no fixed order)."""
    header = response["Content-Security-Policy"]
    return {d.split(" ", 1)[0]: d.split(" ", 1)[1] for d in header.split("; ")}


def test_a_back_office_page_allows_only_this_hosts_files(client: Client, tenant: Tenant, make_staff: Any) -> None:
    client.force_login(make_staff(tenant))
    response = client.get("/app/")
    assert response.status_code == 200
    assert directives(response) == POLICY
    assert "unsafe" not in response["Content-Security-Policy"]


def test_the_login_page_has_the_policy(client: Client) -> None:
    response = client.get("/app/login/")
    assert response.status_code == 200
    assert directives(response)["script-src"] == "'self'"
    assert directives(response)["style-src"] == "'self'"


def test_the_api_reference_works_under_the_policy(client: Client) -> None:
    # given: Swagger UI from drf-spectacular-sidecar
    page = client.get("/api/v1/docs/")
    # then: the page has the site's policy, and nothing inline that it would refuse
    assert page.status_code == 200
    assert directives(page) == POLICY
    html = page.content.decode()
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html) == []
    assert "<style" not in html
    # its start-up script is a file of this host, served as JavaScript
    [script_url] = re.findall(r'<script src="([^"]*\?[^"]*script[^"]*)"', html)
    script = client.get(script_url.replace("&amp;", "&"))
    assert script.status_code == 200
    assert script["Content-Type"].startswith("application/javascript")
    assert "SwaggerUIBundle(" in script.content.decode()
    # no badge from the public validator: nothing is fetched from elsewhere
    assert '"validatorUrl": null' in script.content.decode()


INLINE = [
    (re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>"), "an inline <script>"),
    (re.compile(r"<style\b"), "a <style> element"),
    (re.compile(r"\sstyle=\""), "a style attribute"),
    (re.compile(r"\son[a-z]+=\""), "an inline event handler"),
    (re.compile(r"javascript:"), "a javascript: URL"),
    (re.compile(r"\bhx-on"), "an hx-on handler (evaluated as script)"),
]


def test_no_page_template_needs_what_the_policy_refuses() -> None:
    # templates/invoicing/invoice.html is the PDF's HTML, rendered by WeasyPrint, never by a browser
    root = Path(settings.BASE_DIR) / "templates"
    found = []
    for path in sorted(root.rglob("*.html")):
        if path.parts[-2:] == ("invoicing", "invoice.html") or "email" in path.parts:
            continue
        text = path.read_text()
        found += ["%s: %s" % (path.relative_to(root), what) for pattern, what in INLINE if pattern.search(text)]
    assert found == []
