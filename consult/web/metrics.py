"""`/metrics` for Prometheus, to scrapers the settings name and nobody else.

`METRICS_TOKEN` asks for `Authorization: Bearer <token>`; `METRICS_ALLOWED_ADDRESSES`
names the addresses (or networks) a scrape may come from, as the connection's peer (a
scraper reaches each instance directly, not through the load balancer). When both are
set, both must hold. With neither, and to anyone who fails them, the answer is the plain
404 of any unknown path: the endpoint does not say that it exists.
"""

import hmac
import ipaddress

from flask import Blueprint, Flask, Response, abort, current_app, request

from .. import consultations, metrics
from .security import bearer_token

bp = Blueprint("metrics", __name__)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def init_app(app: Flask) -> None:
    """Read the access settings once, so a mistyped address stops the start, not a scrape."""
    app.extensions["metrics_addresses"] = networks(app.config["METRICS_ALLOWED_ADDRESSES"])
    app.register_blueprint(bp)


def networks(setting: str | None) -> list:
    return [
        ipaddress.ip_network(a.strip(), strict=False)
        for a in (setting or "").split(",")
        if a.strip()
    ]


@bp.get("/metrics")
def scrape():
    """Every metric, in the Prometheus text format."""
    if not _allowed():
        abort(404)
    return Response(metrics.exposition(consultations.active_count), content_type=CONTENT_TYPE)


def _allowed() -> bool:
    token = current_app.config["METRICS_TOKEN"]
    allowed = current_app.extensions["metrics_addresses"]
    if not token and not allowed:
        return False
    if token and not hmac.compare_digest((bearer_token() or "").encode(), token.encode()):
        return False
    return not allowed or _address_in(request.remote_addr, allowed)


def _address_in(address: str | None, allowed: list) -> bool:
    try:
        peer = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    return any(peer in network for network in allowed)
