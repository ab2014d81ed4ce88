"""HTTP API blueprints; thin views over `connector.services`."""

from __future__ import annotations

from flask import Flask


def register_blueprints(app: Flask) -> None:
    from connector.api import health, openapi, v1

    app.register_blueprint(health.bp)
    app.register_blueprint(v1.bp)
    app.register_blueprint(openapi.bp)
