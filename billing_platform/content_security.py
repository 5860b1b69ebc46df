"""Route-specific Content-Security-Policies (the site's own is ``CONTENT_SECURITY_POLICY`` in the
settings: this host's files only, no inline script or style)."""

from collections.abc import Callable
from typing import Any, TypeVar, cast

from csp.constants import SELF
from csp.decorators import csp

View = TypeVar("View", bound=Callable[..., Any])

# Chrome shows a PDF through a page of its own, with inline styles and an <embed>, which the site's
# policy (no inline style, object-src 'none') would block: the viewer stays blank
# (crbug.com/271452). A PDF runs none of our scripts; its policy only keeps it out of other sites'
# frames (the back-office shows it in a frame of its own).
PDF_POLICY = {"frame-ancestors": [SELF]}


def pdf_policy(view: View) -> View:
    """For a view (or an API view's method) that answers a PDF shown inline."""
    return cast(View, csp(PDF_POLICY)(view))
