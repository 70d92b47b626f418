"""Operator commands: `flask --app app <command> --help` explains each."""

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from . import accounts, ledger_audit, wallet
from .clock import utcnow
from .errors import DomainError
from .schema import create_schema
from .services import services_of


@click.command("init-db")
@with_appcontext
def init_db():
    """Create the database tables (safe to run again)."""
    create_schema(current_app)
    click.echo(f"Database ready: {current_app.config['DATABASE_URL']}")


@click.command("create-user")
@click.argument("username")
@click.option("--password", required=True, help="At least 8 characters.")
@click.option("--role", type=click.Choice(accounts.ROLES), default="user", show_default=True)
@click.option("--rate", type=click.IntRange(min=1), help="Astrologers: paise per minute.")
@click.option(
    "--balance", type=click.IntRange(min=1), help="Users: opening demo recharge, in paise."
)
@click.option("--name", help="Display name (defaults to the username).")
@with_appcontext
def create_user(username, password, role, rate, balance, name):
    """Create a user, astrologer or admin account."""
    create_schema(current_app)
    services = services_of(current_app)
    try:
        user = accounts.create_user(
            username,
            password,
            role=role,
            now=utcnow(),
            display_name=name,
            rate_paise_per_minute=rate,
        )
        if balance:
            wallet.recharge(
                user.id, balance, at=utcnow(), provider=services.payments, hub=services.hub
            )
    except DomainError as error:
        raise click.ClickException(error.message) from None
    click.echo(f"Created {role} {user.username} (id {user.id})")


@click.command("demo-data")
@with_appcontext
def demo_data():
    """Create the demo accounts (if missing) and print their logins."""
    from . import demo

    create_schema(current_app)
    for line in demo.seed(current_app):
        click.echo(line)


@click.command("audit-ledger")
@with_appcontext
def audit_ledger():
    """Check every money invariant; print each problem and exit 1, or exit 0 if sound."""
    report = ledger_audit.check()
    if report.ok:
        click.echo(f"ledger OK: {report.transfers} transfers, {report.sessions} sessions checked")
        return
    for problem in report.problems:
        click.echo(str(problem))
    click.echo(
        f"ledger has {len(report.problems)} problem(s) in {report.transfers} transfers "
        f"and {report.sessions} sessions",
        err=True,
    )
    click.get_current_context().exit(1)


COMMANDS = (init_db, create_user, demo_data, audit_ledger)


def init_app(app: Flask) -> None:
    for command in COMMANDS:
        app.cli.add_command(command)
