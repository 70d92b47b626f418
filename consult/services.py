"""The wiring: what the use cases need from the deployment, and how it is built.

Every entry point (REST, pages, sockets, the CLI, the scheduler) takes these from
`services_of(app)` and passes them to the domain as plain arguments.
"""

from dataclasses import dataclass, replace

from flask import Flask

from . import presence
from .policy import Policy
from .process import settle_heap
from .realtime import Hub, LocalHub
from .scheduler import Scheduler
from .schema import create_schema
from .wallet import DemoPaymentProvider, PaymentProvider


@dataclass
class Services:
    hub: Hub
    settings: Policy  # from the configuration
    payments: PaymentProvider
    scheduler: Scheduler | None = None  # set where the clock runs (app.py, gunicorn workers)

    @property
    def policy(self) -> Policy:
        """The settings, with the restart's doubt while the scheduler has one."""
        restart = self.scheduler.restart() if self.scheduler is not None else None
        return self.settings if restart is None else replace(self.settings, restart=restart)


def install(app: Flask) -> Services:
    """Build the app's services from its configuration and keep them on the app."""
    services = Services(
        hub=_make_hub(app), settings=Policy.from_config(app.config), payments=DemoPaymentProvider()
    )
    app.extensions["consult"] = services
    return services


def services_of(app: Flask) -> Services:
    return app.extensions["consult"]


def _make_hub(app: Flask) -> Hub:
    """In memory for one process; on Redis (`REDIS_URL`) for several."""
    listener = presence.listener(app)
    if app.config.get("REDIS_URL"):
        from .redis_hub import RedisHub  # only deployments with Redis import its client

        return RedisHub(
            app.config["REDIS_URL"], on_presence=listener, prefix=app.config["REDIS_PREFIX"]
        )
    return LocalHub(on_presence=listener)


def start_background(app: Flask):
    """Where a serving process begins (app.py, and each gunicorn worker): bring the schema
    up to date, settle what a crash left active, start the scheduler, and freeze what
    start-up built (process.py)."""
    create_schema(app)
    scheduler = Scheduler(app, interval=float(app.config["SCHEDULER_INTERVAL_SECONDS"]))
    scheduler.recover()
    scheduler.start()
    services_of(app).scheduler = scheduler
    settle_heap()
    return scheduler
