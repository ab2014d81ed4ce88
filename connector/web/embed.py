"""`/embed/vendors/<system>/<external_id>`: the dispatcher page, for an iframe or a custom link in
Salesforce or a dispatch tool. Authorised by a signed link that expires (no API token); answers
HTML, also for refusals, with headers that let only the configured sites frame it."""

from __future__ import annotations

import re

from flask import Blueprint, current_app, render_template, request

from connector.api.common import db
from connector.clock import utcnow
from connector.errors import APIError
from connector.services import embed

bp = Blueprint("embed", __name__, url_prefix="/embed", template_folder="templates")

# CSP source expressions `frame-ancestors` accepts: keywords, schemes, hosts (with wildcards,
# ports and paths). Anything else (a `;` above all) would smuggle directives into the header.
_SOURCE = re.compile(
    r"'self'|'none'|\*|[A-Za-z][A-Za-z0-9+.-]*:"
    r"|(?:[A-Za-z][A-Za-z0-9+.-]*://)?(?:\*\.)?[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
    r"(?::(?:[0-9]{1,5}|\*))?(?:/[A-Za-z0-9._~%!$&()*+=:@/-]*)?"
)


def content_security_policy(frame_ancestors: str) -> str:
    """The page's CSP: nothing but inline styles, framed only by `frame_ancestors` (the
    `COI_EMBED_FRAME_ANCESTORS` setting, space-separated sources); ValueError when a source is
    not one."""
    sources = frame_ancestors.split()
    bad = [s for s in sources if not _SOURCE.fullmatch(s)]
    if not sources or bad or ("'none'" in sources and len(sources) > 1):
        raise ValueError(
            f"COI_EMBED_FRAME_ANCESTORS {frame_ancestors!r} is not a list of CSP sources "
            "(e.g. 'self' https://example.my.site.com)"
        )
    return "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors " + " ".join(sources)


@bp.record_once
def _configure(state) -> None:
    # A bad setting stops the app at start-up rather than at the first dispatcher's request.
    settings = state.app.extensions["coi"].settings
    state.app.extensions["coi_embed_csp"] = content_security_policy(settings.embed_frame_ancestors)


@bp.get("/vendors/<system>/<path:external_id>")
def vendor_page(system: str, external_id: str):
    runtime = current_app.extensions["coi"]
    now = utcnow()
    link_expires = embed.check_link(
        runtime.settings.secret_key,
        system,
        external_id,
        request.args.get("expires"),
        request.args.get("signature"),
        now,
    )
    session = db()
    vendor = embed.vendor_for_link(session, system, external_id)
    view = embed.vendor_view(session, vendor, now.date(), now, runtime.snapshots)
    return render_template("embed/vendor.html", vendor=view, link_expires=link_expires)


@bp.errorhandler(APIError)
def _refused(err: APIError):
    return render_template("embed/error.html", status=err.status, message=err.message), err.status


@bp.after_request
def _headers(response):
    response.headers["Content-Security-Policy"] = current_app.extensions["coi_embed_csp"]
    # The URL carries a signature: never cache the page nor leak the URL to other sites.
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
