"""The `coi` command line: serve, db, token, webhooks, insurers, evaluate, demo."""

from __future__ import annotations

import json
import sys
from datetime import date

import click
from marshmallow import ValidationError
from sqlalchemy import select

from connector.clock import today
from connector.config import Settings
from connector.errors import APIError
from connector.jobs import Jobs, preload
from connector.services.context import Context
from connector.storage.db import make_engine, make_sessionmaker, upgrade, upgrade_if_empty


def _context(settings: Settings, actor: str, *, migrate: bool = True) -> Context:
    engine = make_engine(settings.database_url)
    if migrate:
        upgrade_if_empty(engine)
    sessions = make_sessionmaker(engine)
    return Context(sessions(), Jobs(settings, sessions), actor, today())


@click.group()
def main() -> None:
    """coi-connector: certificate-of-insurance compliance where work is dispatched and paid."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=int)
def serve(host: str, port: int, workers: int) -> None:
    """Run the API under gunicorn (creates the schema on an empty database first)."""
    from gunicorn.app.base import BaseApplication

    from connector.app import create_app

    settings = Settings.from_env()
    upgrade_if_empty(make_engine(settings.database_url))

    class _Server(BaseApplication):
        def load_config(self):
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", workers)
            self.cfg.set("accesslog", "-")

        def load(self):
            return create_app(settings)

    _Server().run()


@main.command()
@click.option("--burst", is_flag=True, help="Stop when the queue is empty.")
def worker(burst: bool) -> None:
    """Run an rq worker (with its scheduler) on the connector's queue; needs COI_REDIS_URL."""
    from rq import Worker

    settings = Settings.from_env()
    if settings.redis_url is None:
        raise click.UsageError("COI_REDIS_URL is not set: without Redis, jobs run inline")
    jobs = Jobs(settings, make_sessionmaker(make_engine(settings.database_url)))
    preload()
    queue = jobs.queue()
    Worker([queue], connection=queue.connection).work(burst=burst, with_scheduler=True)


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply every pending migration."""
    upgrade(make_engine(Settings.from_env().database_url))
    click.echo("database is at the latest revision")


@main.group()
def token() -> None:
    """API tokens."""


@token.command("create")
@click.option("--role", required=True, type=click.Choice(["admin", "dispatcher", "integration"]))
@click.option("--name", required=True)
def token_create(role: str, name: str) -> None:
    """Create a token; it is printed once, as the last line, and stored only as a hash."""
    from connector.api.auth import create_token

    ctx = _context(Settings.from_env(), "cli")
    with ctx.session.begin():
        value = create_token(ctx.session, name, role)
    click.echo(f"created {role} token {name!r}; it is shown only once:")
    click.echo(value)


@main.group()
def connection() -> None:
    """Connections to remote systems."""


@connection.command("add")
@click.argument("path", type=click.File("r", encoding="utf-8"))
def connection_add(path) -> None:
    """Add a connection described in a YAML or JSON file (name, kind, settings, objects,
    schedule_minutes, fail_open). Secrets are referenced as <name>_env / <name>_file."""
    import yaml

    from connector.schemas import connection_schema
    from connector.services import connections

    try:
        data = connection_schema.load(yaml.safe_load(path))
        created = connections.add(_context(Settings.from_env(), "cli"), data)
    except ValidationError as err:
        raise click.ClickException(f"invalid connection: {err.messages}") from None
    except APIError as err:
        raise click.ClickException(f"{err.message} {err.fields or ''}".strip()) from None
    click.echo(f"added connection {created.name} ({created.kind})")


@connection.command("list")
def connection_list() -> None:
    """List connections."""
    from connector.services import connections

    ctx = _context(Settings.from_env(), "cli")
    for item in connections.list_all(ctx.session):
        objects = ", ".join(f"{o['remote']}->{o['canonical']}" for o in item["objects"])
        click.echo(f"{item['name']:<24}{item['kind']:<18}{objects}")


@connection.command("test")
@click.argument("name")
def connection_test(name: str) -> None:
    """Check that the remote answers and the credentials work."""
    from connector.services import connections

    ctx = _context(Settings.from_env(), "cli")
    try:
        result = connections.test(connections.get(ctx.session, name))
    except APIError as err:
        raise click.ClickException(err.message) from None
    click.echo(json.dumps(result, indent=2, default=str))
    if not result["ok"]:
        sys.exit(1)


@connection.command("remove")
@click.argument("name")
def connection_remove(name: str) -> None:
    """Remove a connection."""
    from connector.services import connections

    try:
        connections.remove(_context(Settings.from_env(), "cli"), name)
    except APIError as err:
        raise click.ClickException(err.message) from None
    click.echo(f"removed connection {name}")


@main.command()
@click.argument("name")
@click.option("--object", "remote_object", required=True, help="Remote object, e.g. Account.")
@click.option("--full", is_flag=True, help="Read everything, not only changes since last time.")
def sync(name: str, remote_object: str, full: bool) -> None:
    """Pull one object of a connection now (inline), then push pending compliance fields."""
    from adapters.base import AdapterError
    from connector.services.outbox import deliver
    from connector.services.sync import run_sync

    settings = Settings.from_env()
    engine = make_engine(settings.database_url)
    upgrade_if_empty(engine)
    sessions = make_sessionmaker(engine)
    jobs = Jobs(Settings(database_url=settings.database_url), sessions)

    shown = {"width": 0}

    def show(counts: dict) -> None:
        line = sync_progress_line(counts)
        click.echo("\r" + line.ljust(shown["width"]), nl=False)
        shown["width"] = len(line)

    try:
        run_id = run_sync(sessions, jobs, name, remote_object, full=full, progress=show)
    except APIError as err:
        raise click.ClickException(err.message) from None
    except AdapterError as err:
        raise click.ClickException(f"sync failed: {err}") from None
    pushed = deliver(sessions, name)
    click.echo(f"\nsync run {run_id} done; pushed {pushed['sent']} record(s)")


@main.command()
@click.argument("names", nargs=-1)
def push(names: tuple[str, ...]) -> None:
    """Send the outbox entries that are due (compliance fields, work-order writebacks) to the
    named connections, or to every active one. With Redis the worker does this on its own;
    without it, run this from cron every minute so that a remote that was down gets what waited
    for it."""
    from sqlalchemy import select

    from connector.services.outbox import deliver
    from connector.storage import models as m

    ctx = _context(Settings.from_env(), "cli")
    with ctx.session:
        if not names:
            names = tuple(
                ctx.session.scalars(
                    select(m.Connection.name)
                    .where(m.Connection.active.is_(True))
                    .order_by(m.Connection.name)
                )
            )
        known = set(ctx.session.scalars(select(m.Connection.name)))
    unknown = [n for n in names if n not in known]
    if unknown:
        raise click.UsageError(f"no connection named {', '.join(unknown)}")
    for name in names:
        counts = deliver(ctx.jobs.sessions, name)
        click.echo(f"{name}: " + "  ".join(f"{k} {v}" for k, v in counts.items()))


SYNC_BAR_WIDTH = 30


def sync_progress_line(counts: dict) -> str:
    """One line of `coi sync` progress: a bar when the remote said how many records the run
    reads (`total`), else a running count; then the counts that are not zero."""
    seen, total = counts.get("seen", 0), counts.get("total")
    if total:
        done = min(seen / total, 1.0)
        filled = round(done * SYNC_BAR_WIDTH)
        head = f"[{'#' * filled}{'-' * (SYNC_BAR_WIDTH - filled)}] {done:4.0%} {seen:,}/{total:,}"
    else:
        head = f"{seen:,} records"
    kinds = ("created", "merged", "updated", "deactivated", "reactivated", "rejected")
    tally = "  ".join(f"{k} {counts[k]:,}" for k in kinds if counts.get(k))
    return f"{head}  {tally}" if tally else head


@main.command("embed-link")
@click.argument("system")
@click.argument("external_id")
@click.option("--ttl", "ttl_seconds", type=int, default=None, help="Seconds (default 3600).")
@click.option("--base-url", default="", help="The connector's URL, e.g. https://coi.example.com")
def embed_link(system: str, external_id: str, ttl_seconds: int | None, base_url: str) -> None:
    """Print a signed link to a vendor's dispatcher page (needs COI_SECRET_KEY), as the last
    line."""
    from connector.schemas import embed_link_request_schema
    from connector.services.embed import mint

    settings = Settings.from_env()
    body = {"system": system, "external_id": external_id}
    if ttl_seconds is not None:
        body["ttl_seconds"] = ttl_seconds
    try:
        data = embed_link_request_schema.load(body)
        link = mint(_context(settings, "cli"), settings.secret_key, data)
    except ValidationError as err:
        raise click.UsageError(f"invalid link: {err.messages}") from None
    except APIError as err:
        raise click.ClickException(err.message) from None
    click.echo(f"link to {system}/{external_id}, valid until {link['expires_at']}:")
    click.echo(base_url.rstrip("/") + link["url"])


@main.group()
def webhooks() -> None:
    """Outbound webhook events (subscriptions are managed over the API)."""


@webhooks.command("deliver")
def webhooks_deliver() -> None:
    """Send the outbound webhook deliveries that are due now (what the worker does every
    minute when Redis is configured); needs COI_SECRET_KEY to sign."""
    from webhooks.delivery import deliver

    settings = Settings.from_env()
    if not settings.secret_key:
        raise click.UsageError("COI_SECRET_KEY is not set: the signing secrets cannot be read")
    ctx = _context(settings, "cli")
    ctx.session.close()
    counts = deliver(ctx.jobs.sessions, settings.secret_key)
    click.echo("  ".join(f"{k} {v}" for k, v in counts.items()))


@webhooks.command("announce-expiring")
def webhooks_announce_expiring() -> None:
    """Emit `policy.expiring` for policies newly within their expiring window (the daily job)."""
    from connector.services.events import announce_expiring

    ctx = _context(Settings.from_env(), "cli")
    with ctx.session.begin():
        count = announce_expiring(ctx.session, ctx.today)
    click.echo(f"announced {count} expiring polic{'y' if count == 1 else 'ies'}")


@webhooks.command("prune")
def webhooks_prune() -> None:
    """Drop inbound receipts older than 7 days and finished outbound deliveries older than 30
    (the daily job)."""
    from connector.clock import utcnow
    from connector.services.retention import prune

    settings = Settings.from_env()
    ctx = _context(settings, "cli")
    with ctx.session.begin():
        counts = prune(ctx.session, utcnow(), settings.claims_dir)
    click.echo("  ".join(f"{k} {v}" for k, v in counts.items()))


@main.group()
def insurers() -> None:
    """The insurer rating table (A.M. Best by NAIC code)."""


@insurers.command("import")
@click.argument("path", type=click.File("r", encoding="utf-8-sig"))
def insurers_import(path) -> None:
    """Load or update insurers from a CSV with columns naic,name,am_best."""
    from connector.services.insurers import import_rows, parse_csv

    try:
        rows = parse_csv(path)
    except ValidationError as err:
        for where, problem in err.messages.items():
            click.echo(f"{where}: {problem}", err=True)
        sys.exit(2)
    counts = import_rows(_context(Settings.from_env(), "cli"), rows)
    click.echo(f"{counts['rows']} rows: {counts['created']} new, {counts['updated']} changed")


@main.command()
@click.option("--vendor", "vendor_ids", type=int, multiple=True, help="Only these vendors.")
def evaluate(vendor_ids: tuple[int, ...]) -> None:
    """Recompute stored compliance results as of today and print a summary."""
    from connector.services.compliance import recompute
    from connector.services.reports import print_summary
    from connector.storage.models import Vendor

    ctx = _context(Settings.from_env(), "cli")
    with ctx.session.begin():
        ids = vendor_ids or ctx.session.scalars(select(Vendor.id)).all()
        count = recompute(ctx.session, ids, ctx.today)
    click.echo(f"evaluated {count} vendors as of {ctx.today.isoformat()}")
    print_summary(ctx.session, click.echo)


@main.command()
@click.option("--database-url", default=None, help="Default: a new SQLite file in a temp dir.")
@click.option("--as-of", type=click.DateTime(["%Y-%m-%d"]), default=None)
def demo(database_url: str | None, as_of) -> None:
    """Load the bundled sample network, evaluate it, print a summary and some gate decisions."""
    from connector.demo.run import run_demo

    day: date = as_of.date() if as_of else today()
    sys.exit(run_demo(database_url, day, click.echo))
