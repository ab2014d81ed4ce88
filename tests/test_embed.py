"""The dispatcher page `/embed/vendors/<system>/<external_id>` and its signed links: minting
(API and CLI), what the page shows, every way a link is refused, and the headers that let only the
configured sites frame it. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from html.parser import HTMLParser
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from click.testing import CliRunner
from markupsafe import escape
from sqlalchemy import select, update

from connector.app import create_app
from connector.cli import main
from connector.config import Settings
from connector.services import embed
from connector.storage import models as m
from tests.conftest import TEST_SECRET_KEY, certificate, day, good_certificate, policy

CSP = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'self'"


class Page(HTMLParser):
    """The parts of the page a dispatcher reads: heading, status band, facts, list items."""

    TRACKED = ("h1", "h2", "section", "dt", "dd", "li")

    def __init__(self, html: str):
        super().__init__()
        self.h1 = ""
        self.band_class = ""
        self.band = ""
        self.facts: dict[str, str] = {}
        self.deficiencies: list[tuple[str, str]] = []  # (text, class of the item)
        self.alternatives: list[str] = []
        self._open: list[tuple[str, dict, list[str]]] = []
        self._heading = ""
        self._term = ""
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        if tag in self.TRACKED:
            self._open.append((tag, dict(attrs), []))

    def handle_data(self, data):
        for _, _, text in self._open:
            text.append(data)

    def handle_endtag(self, tag):
        if not self._open or self._open[-1][0] != tag:
            return
        _, attrs, parts = self._open.pop()
        text = " ".join("".join(parts).split())
        if tag == "h1":
            self.h1 = text
        elif tag == "h2":
            self._heading = text
        elif tag == "section":
            self.band_class, self.band = attrs.get("class", ""), text
        elif tag == "dt":
            self._term = text
        elif tag == "dd":
            self.facts[self._term] = text
        elif self._heading == "Deficiencies":
            self.deficiencies.append((text, attrs.get("class", "")))
        else:
            self.alternatives.append(text)


def mint(api, system="dispatch", external_id="P-1", **extra):
    response = api.post(
        "/api/v1/embed-links", {"system": system, "external_id": external_id, **extra}
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def open_page(app, url: str):
    return app.test_client().get(url)


def page_of(app, url: str) -> Page:
    response = open_page(app, url)
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    assert response.mimetype == "text/html"
    return Page(response.get_data(as_text=True))


def refused(response, status: int) -> str:
    """The text of an HTML refusal with this status."""
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    assert response.mimetype == "text/html"
    return response.get_data(as_text=True)


def link_with(url: str, **changes) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    query.update(changes)
    query = {k: v for k, v in query.items() if v is not None}
    return parts.path + ("?" + "&".join(f"{k}={quote(str(v))}" for k, v in query.items()))


@pytest.fixture
def ref_of(sessions):
    """The (system, external_id) the `make_vendor` fixture bound a vendor to."""

    def ref(vendor_id: int) -> tuple[str, str]:
        with sessions() as session:
            binding = session.scalar(select(m.Binding).where(m.Binding.vendor_id == vendor_id))
            return binding.system, binding.external_id

    return ref


@pytest.fixture
def keyless_app(engine, database_url):
    app = create_app(Settings(database_url=database_url), engine=engine)
    app.config["TESTING"] = True
    return app


# --------------------------------------------------------------------------------------------
# What the page shows
# --------------------------------------------------------------------------------------------


def test_page_shows_a_compliant_vendor_with_score_expiry_and_set(
    app, api, standard_set, make_vendor, ref_of
):
    vendor_id = make_vendor("Harbor Plumbing Co.", cert=good_certificate(end=265))
    vendor = api.get(f"/api/v1/vendors/{vendor_id}").get_json()

    page = page_of(app, mint(api, *ref_of(vendor_id))["url"])

    assert page.h1 == "Harbor Plumbing Co."
    assert "band-compliant" in page.band_class
    assert "Compliant" in page.band
    assert page.facts == {
        "Score": f"{vendor['score']} / 100",
        "Earliest expiry": day(265),
        "Requirement set": "Standard",
    }
    assert page.deficiencies == []


@pytest.mark.parametrize(
    ("cert", "band", "words"),
    [
        (good_certificate(end=10), "band-expiring", "Expiring soon"),
        (
            certificate(policy("general_liability", "GL-1", -100, 265)),
            "band-non_compliant",
            "Not compliant",
        ),
    ],
    ids=["expiring", "non_compliant"],
)
def test_status_band_says_the_status_in_words(
    app, api, standard_set, make_vendor, ref_of, cert, band, words
):
    vendor_id = make_vendor(cert=cert)

    page = page_of(app, mint(api, *ref_of(vendor_id))["url"])

    assert band in page.band_class
    assert words in page.band


def test_inactive_vendor_is_grey_and_says_so(app, api, standard_set, make_vendor, ref_of, sessions):
    vendor_id = make_vendor(cert=good_certificate())
    url = mint(api, *ref_of(vendor_id))["url"]
    with sessions() as session, session.begin():
        session.execute(update(m.Vendor).where(m.Vendor.id == vendor_id).values(active=False))

    page = page_of(app, url)

    assert "band-inactive" in page.band_class
    assert "Inactive" in page.band


def test_deficiencies_are_the_engines_sentences_and_waived_ones_are_marked(
    app, api, standard_set, make_vendor, ref_of
):
    vendor_id = make_vendor(cert=certificate(policy("general_liability", "GL-1", -100, 265)))
    waived = api.post(
        f"/api/v1/vendors/{vendor_id}/waivers",
        {
            "code": "missing_coverage",
            "line": "automobile_liability",
            "reason": "r",
            "until": day(30),
        },
    )
    assert waived.status_code == 201, waived.get_json()
    result = api.get(f"/api/v1/vendors/{vendor_id}/compliance").get_json()["results"][0]
    assert result["waived"], result

    page = page_of(app, mint(api, *ref_of(vendor_id))["url"])

    tags = {"block": "blocks work", "warn": "warning"}
    assert page.deficiencies == [
        (f"{d['message']} {tags[d['severity']]}", "") for d in result["deficiencies"]
    ] + [(f"{d['message']} waived", "waived") for d in result["waived"]]


def test_alternatives_share_a_work_type_and_a_region_best_score_first(
    app, api, standard_set, make_vendor, ref_of
):
    me = make_vendor("Me", work_types=["plumbing", "hvac"], regions=["us-east"], cert=None)
    near = make_vendor(
        "Near Expiry", work_types=["hvac"], regions=["us-east"], cert=good_certificate(end=40)
    )
    far = make_vendor(
        "Far Expiry",
        work_types=["plumbing"],
        regions=["us-east", "us-west"],
        cert=good_certificate(end=300),
    )
    make_vendor("Other Region", regions=["eu-west"], cert=good_certificate())
    make_vendor("Other Trade", work_types=["roofing"], cert=good_certificate())
    make_vendor("Uncovered", cert=certificate(policy("general_liability", "GL-9", -10, 300)))
    scores = {v: api.get(f"/api/v1/vendors/{v}").get_json()["score"] for v in (near, far)}
    assert scores[far] > scores[near]

    page = page_of(app, mint(api, *ref_of(me))["url"])

    assert "band-non_compliant" in page.band_class
    assert page.alternatives == [
        f"Far Expiry: Compliant, score {scores[far]}",
        f"Near Expiry: Compliant, score {scores[near]}",
    ]


def test_hostile_vendor_names_are_escaped(app, api, standard_set, make_vendor, ref_of):
    hostile = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    me = make_vendor(hostile, cert=None)
    make_vendor(hostile + " alt", cert=good_certificate())

    response = open_page(app, mint(api, *ref_of(me))["url"])
    html = response.get_data(as_text=True)

    assert response.status_code == 200
    assert "<script" not in html and "<img" not in html
    assert str(escape(hostile)) in html
    page = Page(html)
    assert page.h1 == hostile
    assert page.alternatives[0].startswith(hostile + " alt:")


def test_page_says_when_it_was_last_evaluated(app, api, standard_set, make_vendor, ref_of):
    vendor_id = make_vendor(cert=good_certificate())

    html = open_page(app, mint(api, *ref_of(vendor_id))["url"]).get_data(as_text=True)

    assert f"Last evaluated {datetime.now(UTC):%Y-%m-%d}" in html


# --------------------------------------------------------------------------------------------
# Links: minted, refused
# --------------------------------------------------------------------------------------------


def test_minted_link_is_relative_expires_when_asked_and_is_audited(
    api, standard_set, make_vendor, ref_of
):
    vendor_id = make_vendor(cert=good_certificate())
    system, external_id = ref_of(vendor_id)
    before = int(time.time())

    link = mint(api, system, external_id, ttl_seconds=600)

    expires = int(parse_qs(urlsplit(link["url"]).query)["expires"][0])
    assert link["url"].startswith(f"/embed/vendors/{system}/{external_id}?")
    assert before + 600 <= expires <= int(time.time()) + 600
    assert datetime.fromisoformat(link["expires_at"]) == datetime.fromtimestamp(expires, UTC)
    assert api.token not in link["url"]
    events = api.get("/api/v1/audit?action=embed_link.create").get_json()["items"]
    assert [e["entity_id"] for e in events] == [str(vendor_id)]


def test_external_ids_with_slashes_and_spaces_make_working_links(app, api, standard_set):
    body = {
        "name": "Slash & Co",
        "external_refs": [{"system": "bc", "external_id": "V/2024 001?x=1#y"}],
    }
    assert api.post("/api/v1/vendors", body).status_code == 201

    page = page_of(app, mint(api, "bc", "V/2024 001?x=1#y")["url"])

    assert page.h1 == "Slash & Co"


@pytest.mark.parametrize("ttl", [0, 59, 7 * 24 * 3600 + 1, "3600", True, 1.5, None], ids=repr)
def test_ttl_outside_one_minute_to_seven_days_is_a_422(api, standard_set, make_vendor, ref_of, ttl):
    system, external_id = ref_of(make_vendor())

    response = api.post(
        "/api/v1/embed-links", {"system": system, "external_id": external_id, "ttl_seconds": ttl}
    )

    assert response.status_code == 422
    assert "ttl_seconds" in response.get_json()["error"]["fields"]


def test_minting_for_an_unknown_vendor_is_a_404(api):
    response = api.post("/api/v1/embed-links", {"system": "dispatch", "external_id": "nobody"})

    assert (response.status_code, response.get_json()["error"]["code"]) == (404, "not_found")


def test_without_a_secret_key_minting_and_pages_are_503(
    keyless_app, app, api, make_vendor, ref_of, make_token
):
    system, external_id = ref_of(make_vendor())
    url = mint(api, system, external_id)["url"]
    client = keyless_app.test_client()
    headers = {"Authorization": f"Bearer {make_token('admin')}"}

    minted = client.post(
        "/api/v1/embed-links",
        json={"system": system, "external_id": external_id},
        headers=headers,
    )

    assert (minted.status_code, minted.get_json()["error"]["code"]) == (503, "unavailable")
    assert "COI_SECRET_KEY" in refused(client.get(url), 503)


@pytest.fixture
def vendor_link(api, standard_set, make_vendor, ref_of):
    return mint(api, *ref_of(make_vendor(cert=good_certificate())))["url"]


def test_tampered_signature_is_refused(app, vendor_link):
    signature = parse_qs(urlsplit(vendor_link).query)["signature"][0]
    flipped = ("0" if signature[0] != "0" else "1") + signature[1:]

    refused(open_page(app, link_with(vendor_link, signature=flipped)), 403)


def test_longer_life_written_into_the_link_is_refused(app, vendor_link):
    expires = int(parse_qs(urlsplit(vendor_link).query)["expires"][0])

    refused(open_page(app, link_with(vendor_link, expires=expires + 3600)), 403)


@pytest.mark.parametrize("missing", ["expires", "signature"])
def test_link_without_its_expiry_or_signature_is_refused(app, vendor_link, missing):
    refused(open_page(app, link_with(vendor_link, **{missing: None})), 403)


def test_link_of_one_vendor_does_not_open_another(app, api, make_vendor, ref_of, vendor_link):
    other_system, other_id = ref_of(make_vendor("Someone Else", cert=good_certificate()))
    query = urlsplit(vendor_link).query

    response = open_page(app, f"/embed/vendors/{other_system}/{other_id}?{query}")

    assert "Someone Else" not in refused(response, 403)


def test_expired_link_is_refused(app, make_vendor, ref_of):
    system, external_id = ref_of(make_vendor(cert=good_certificate()))
    url = embed.signed_path(TEST_SECRET_KEY, system, external_id, int(time.time()) - 1)

    assert "expired" in refused(open_page(app, url), 403)


def test_link_signed_with_another_key_is_refused(app, make_vendor, ref_of):
    system, external_id = ref_of(make_vendor(cert=good_certificate()))
    url = embed.signed_path("another-key", system, external_id, int(time.time()) + 600)

    refused(open_page(app, url), 403)


def test_well_signed_link_to_an_unknown_vendor_is_a_404_page(app):
    url = embed.signed_path(TEST_SECRET_KEY, "dispatch", "gone", int(time.time()) + 600)

    refused(open_page(app, url), 404)


@pytest.mark.parametrize(
    ("system", "external_id"),
    [("dispatch", "a\x00b"), ("s" * 65, "P-1"), ("dispatch", "x" * 256), ("dispatch", "ü/../é")],
    ids=["nul", "long_system", "long_id", "unicode_slashes"],
)
def test_well_signed_references_no_binding_can_hold_are_404_not_500(app, system, external_id):
    url = embed.signed_path(TEST_SECRET_KEY, system, external_id, int(time.time()) + 600)

    refused(open_page(app, url), 404)


@pytest.mark.parametrize(
    "query",
    [
        "expires=9999999999999999999999&signature=" + "a" * 64,
        "expires=-5&signature=" + "a" * 64,
        "expires=1e9&signature=" + "a" * 64,
        "expires=%00&signature=%00",
        "expires=1&signature=" + "A" * 64,
        "expires=1&signature=" + "a" * 10_000,
        "expires=%ff%fe&signature=%c3%28",
    ],
)
def test_garbled_links_are_403_not_500(app, query):
    refused(open_page(app, f"/embed/vendors/dispatch/P-1?{query}"), 403)


def test_garbled_paths_are_403_not_500(app):
    for path in [
        "/embed/vendors/%00/%00",
        "/embed/vendors/%ff/%fe",
        "/embed/vendors/a/" + "b" * 5000,
    ]:
        refused(open_page(app, path + "?expires=1&signature=" + "0" * 64), 403)


# --------------------------------------------------------------------------------------------
# Headers
# --------------------------------------------------------------------------------------------


def test_page_and_refusals_carry_the_framing_and_caching_headers(app, vendor_link):
    for response in (
        open_page(app, vendor_link),
        open_page(app, link_with(vendor_link, expires=1)),
    ):
        assert response.headers["Content-Security-Policy"] == CSP
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert "X-Frame-Options" not in response.headers


def test_frame_ancestors_come_from_the_setting(engine, database_url):
    settings = Settings.from_env(
        {
            "COI_DATABASE_URL": database_url,
            "COI_SECRET_KEY": "k",
            "COI_EMBED_FRAME_ANCESTORS": "'self'  https://*.lightning.force.com https://tool.example",
        }
    )
    app = create_app(settings, engine=engine)

    response = app.test_client().get("/embed/vendors/a/b")

    assert response.headers["Content-Security-Policy"].endswith(
        "frame-ancestors 'self' https://*.lightning.force.com https://tool.example"
    )


@pytest.mark.parametrize(
    "value",
    [
        "'self'; script-src *",
        "https://a.example,https://b.example",
        "'none' 'self'",
        "'unsafe-inline'",
    ],
)
def test_a_frame_ancestors_setting_that_is_not_a_source_list_stops_the_app(
    engine, database_url, value
):
    settings = Settings(database_url=database_url, embed_frame_ancestors=value)

    with pytest.raises(ValueError, match="COI_EMBED_FRAME_ANCESTORS"):
        create_app(settings, engine=engine)


# --------------------------------------------------------------------------------------------
# `coi embed-link`
# --------------------------------------------------------------------------------------------


def test_cli_prints_a_working_link_last(app, standard_set, make_vendor, ref_of, database_url):
    system, external_id = ref_of(make_vendor("Cli Vendor", cert=good_certificate()))

    result = CliRunner().invoke(
        main,
        ["embed-link", system, external_id, "--ttl", "120", "--base-url", "https://coi.test/"],
        env={"COI_DATABASE_URL": database_url, "COI_SECRET_KEY": TEST_SECRET_KEY},
    )

    assert result.exit_code == 0, result.output
    link = result.output.strip().splitlines()[-1]
    assert link.startswith(f"https://coi.test/embed/vendors/{system}/{external_id}?")
    assert page_of(app, link.removeprefix("https://coi.test")).h1 == "Cli Vendor"


@pytest.mark.parametrize(
    ("args", "env", "code", "says"),
    [
        (
            ["dispatch", "P-1"],
            {"COI_SECRET_KEY": None, "COI_SECRET_KEY_FILE": None},
            1,
            "COI_SECRET_KEY",
        ),
        (["dispatch", "nobody"], {"COI_SECRET_KEY": "k"}, 1, "does not exist"),
        (["dispatch", "P-1", "--ttl", "10"], {"COI_SECRET_KEY": "k"}, 2, "ttl_seconds"),
    ],
    ids=["no_key", "unknown_vendor", "ttl_too_short"],
)
def test_cli_refuses_with_a_reason(app, make_vendor, database_url, args, env, code, says):
    make_vendor()

    result = CliRunner().invoke(
        main, ["embed-link", *args], env={"COI_DATABASE_URL": database_url, **env}
    )

    assert result.exit_code == code
    assert says in result.output
