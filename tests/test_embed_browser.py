"""The dispatcher page in a real browser: the app served on a socket, a host page (standing in for
Salesforce or a dispatch tool) that frames a signed link, loaded in Debian's Chromium. A host whose
origin `COI_EMBED_FRAME_ANCESTORS` allows sees the page; any other host gets nothing."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from connector.app import create_app
from connector.config import Settings
from tests.conftest import TEST_SECRET_KEY, good_certificate

CHROMIUM = "/usr/bin/chromium"
# As root, without a sandbox; and no background traffic, which this machine's network refuses.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason=f"Debian's Chromium is not installed at {CHROMIUM}"
)


@contextmanager
def serving(wsgi_app) -> Iterator[str]:
    """Serve a WSGI app on a free loopback port; yields its origin."""
    server = make_server("127.0.0.1", 0, wsgi_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()


def host_page(frame_src: Callable[[], str]) -> Callable:
    """A WSGI app answering every path with a page that frames `frame_src()` and changes its
    title once the frame has loaded (whatever the frame holds: page or refusal)."""

    def app(environ, start_response):
        html = (
            "<!doctype html><title>waiting</title><h1>Dispatch tool</h1>"
            f'<iframe src="{frame_src()}" width="600" height="500"'
            " onload=\"document.title='framed'\"></iframe>"
        )
        start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
        return [html.encode()]

    return app


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        yield browser
        browser.close()


@pytest.fixture
def scene(app, api, standard_set, make_vendor, engine, database_url):
    """A non-compliant vendor (dispatch P-1) with one compliant alternative; two host pages
    framing its signed link, one from an allowed origin and one from another; the app served
    with only the first allowed to frame it."""
    scores = {
        name: api.get(f"/api/v1/vendors/{make_vendor(name, cert=cert)}").get_json()["score"]
        for name, cert in [("Unready Plumbing", None), ("Ready Rooter", good_certificate())]
    }
    link = {}
    allowed_host, other_host = host_page(lambda: link["src"]), host_page(lambda: link["src"])
    with serving(allowed_host) as allowed, serving(other_host) as other:
        served = create_app(
            Settings(
                database_url=database_url,
                secret_key=TEST_SECRET_KEY,
                embed_frame_ancestors=allowed,
            ),
            engine=engine,
        )
        with serving(served) as origin:
            minted = api.post("/api/v1/embed-links", {"system": "dispatch", "external_id": "P-1"})
            assert minted.status_code == 201, minted.get_json()
            link["src"] = origin + minted.get_json()["url"]
            yield {"allowed": allowed, "other": other, "scores": scores}


def framed(browser, host: str):
    """Open the host page, wait until its iframe has loaded; returns (page, the frame)."""
    page = browser.new_page()
    page.goto(host)
    page.wait_for_function("document.title === 'framed'")
    frame = page.frames[1]
    return page, frame


def test_allowed_host_shows_status_score_and_an_alternative_in_the_frame(browser, scene):
    page, frame = framed(browser, scene["allowed"])
    try:
        assert frame.locator("h1").inner_text() == "Unready Plumbing"
        assert frame.locator(".band .status").inner_text() == "Not compliant"
        scores = scene["scores"]
        assert frame.locator("dd").first.inner_text() == f"{scores['Unready Plumbing']} / 100"
        assert frame.locator("ol li").all_inner_texts() == [
            f"Ready Rooter: Compliant, score {scores['Ready Rooter']}"
        ]
    finally:
        page.close()


def test_host_of_another_origin_cannot_frame_the_page(browser, scene):
    page, frame = framed(browser, scene["other"])
    try:
        # Chromium replaces a frame that CSP forbids with its own error document.
        assert "/embed/vendors/" not in frame.url
        assert "Unready Plumbing" not in frame.content()
        assert page.locator("h1").inner_text() == "Dispatch tool"
    finally:
        page.close()
