"""HTTP API blueprints; thin views over `connector.services`."""

from __future__ import annotations

from flask import Flask
from werkzeug.routing import IntegerConverter

#: Record ids are 32-bit integer columns; a larger id in a path is simply not found (404).
MAX_ID = 2**31 - 1


class IdConverter(IntegerConverter):
    def __init__(self, url_map, *args, **kwargs):
        super().__init__(url_map, min=1, max=MAX_ID)


def register_blueprints(app: Flask) -> None:
    from connector.api import health, v1
    from connector.web import embed

    app.url_map.converters["id"] = IdConverter
    app.register_blueprint(health.bp)
    app.register_blueprint(v1.bp)
    app.register_blueprint(embed.bp)
