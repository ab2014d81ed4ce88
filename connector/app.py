"""Flask application factory (`connector.app:create_app`)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from flask import Flask, g
from flask.json.provider import DefaultJSONProvider
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from connector import jsontext
from connector.config import Settings
from connector.jobs import Jobs
from connector.services.write_behind import WriteBehind
from connector.storage.db import make_engine, make_sessionmaker
from connector.storage.snapshots import Snapshots


@dataclass
class Runtime:
    """What every request and job of one app shares: settings, database and job runner."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    jobs: Jobs
    snapshots: Snapshots
    #: Where hot paths queue what they store (None: stored in the request).
    write_behind: WriteBehind | None


class JSONProvider(DefaultJSONProvider):
    """Flask's JSON with the same conversions (dates as HTTP dates, UUIDs, dataclasses), written
    by orjson when nothing but compact output is asked for (every response out of debug mode)."""

    sort_keys = False

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        if kwargs in ({}, {"separators": (",", ":")}):
            return jsontext.dumps(obj, self.default)
        return super().dumps(obj, **kwargs)


def create_app(settings: Settings | None = None, *, engine: Engine | None = None) -> Flask:
    settings = settings or Settings.from_env()
    engine = engine or make_engine(settings.database_url)
    sessions = make_sessionmaker(engine)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json = JSONProvider(app)
    write_behind = (
        WriteBehind(sessions, interval=settings.write_behind_ms / 1000)
        if settings.write_behind_ms > 0
        else None
    )
    app.extensions["coi"] = Runtime(
        settings,
        engine,
        sessions,
        Jobs(settings, sessions),
        Snapshots(settings.snapshot_seconds, engine),
        write_behind,
    )

    from connector.api import register_blueprints
    from connector.api.errors import register_error_handlers
    from webhooks.receiver import Receiver

    register_error_handlers(app)
    register_blueprints(app)
    # Webhook deliveries are answered ahead of Flask's dispatch (see its module).
    app.wsgi_app = Receiver(app)

    @app.teardown_appcontext
    def _close_session(_exc):
        session = g.pop("db", None)
        if session is not None:
            session.close()

    logging.getLogger("connector").setLevel(logging.INFO)
    return app


def runtime(app: Flask) -> Runtime:
    return app.extensions["coi"]
