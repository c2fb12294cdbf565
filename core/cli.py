"""The ``pilotdial`` command: server, worker, database, administration, demo, and the domains'.

Domain packages add their own commands through ``<package>.cli.register(app)``. They are
registered lazily: :data:`LAZY_COMMANDS` names each command, the module that defines it and
its one-line help, so ``pilotdial --help`` lists them without importing any domain, and a
command's module is imported only when that command runs (or shows its own ``--help``).
Heavy libraries (SQLAlchemy, SQLModel, FastAPI) are imported inside the commands that need
them. User errors end with a one-line message on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import importlib
import importlib.abc
import sys
import uuid
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from core.errors import PilotdialError

__all__ = ["LAZY_COMMANDS", "app", "main"]

DOMAIN_CLI_MODULES = (
    "data_cleaning.cli",
    "campaigns.cli",
    "campaigns.dnc_cli",
    "dialer.cli",
    "dialer.recordings_cli",
    "feasibility.cli",
    "surveys.cli",
    "reports.cli",
)

#: Domain commands known without importing their module: name -> (module, one-line help).
#: A module of :data:`DOMAIN_CLI_MODULES` with no entry here is imported for every command
#: (correct, only slower); tests check that this table matches what the modules register.
LAZY_COMMANDS: dict[str, tuple[str, str]] = {
    "clean": (
        "data_cleaning.cli",
        "Clean a lead list: normalise, deduplicate, suppress do-not-call numbers, enrich.",
    ),
    "campaign": ("campaigns.cli", "Campaigns: create, pilot, lifecycle, lead states."),
    "attempts": ("campaigns.cli", "Call attempts: import pilot results."),
    "dnc": ("campaigns.dnc_cli", "Do-not-call lists (stored as keyed hashes, shown masked)."),
    "simulate": (
        "dialer.cli",
        "Simulate one campaign day with the simulated gateway and print its figures.",
    ),
    "recordings": ("dialer.recordings_cli", "Call recordings: purge the expired ones."),
    "feasibility": (
        "feasibility.cli",
        "Feasibility report and quote from a pilot's attempts and the full lead list.",
    ),
    "survey": ("surveys.cli", "Questionnaires and AAPOR survey outcome rates."),
}


class LazyGroup(TyperGroup):
    """A command group that imports a domain's command module only when it is needed."""

    def _eager_modules(self) -> list[str]:
        lazy = {module for module, _ in LAZY_COMMANDS.values()}
        return [name for name in DOMAIN_CLI_MODULES if name not in lazy]

    def _load(self, module_name: str) -> None:
        """Import a domain's command module and add every command it registers."""
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                return  # an optional domain that is not installed
            raise
        holder = typer.Typer(rich_markup_mode=None)
        module.register(holder)
        group = typer.main.get_group(holder)
        for name, command in group.commands.items():
            self.commands.setdefault(name, command)

    def list_commands(self, ctx: Any) -> list[str]:
        for module_name in self._eager_modules():
            self._load(module_name)
        return [*self.commands, *(name for name in LAZY_COMMANDS if name not in self.commands)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = self.commands.get(cmd_name)
        if command is not None or cmd_name not in LAZY_COMMANDS:
            return command
        # Listed in a help page: a placeholder with the command's help, nothing imported.
        return typer.main.get_command(_placeholder(cmd_name, LAZY_COMMANDS[cmd_name][1]))

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        name = args[0] if args else ""
        if name in LAZY_COMMANDS and name not in self.commands:
            self._load(LAZY_COMMANDS[name][0])
        elif name not in self.commands:
            for module_name in self._eager_modules():
                self._load(module_name)
        return super().resolve_command(ctx, args)


def _placeholder(name: str, help_text: str) -> typer.Typer:
    holder = typer.Typer(add_completion=False, rich_markup_mode=None)
    holder.command(name, help=help_text)(lambda: None)
    return holder


app = typer.Typer(
    name="pilotdial",
    help="Outbound campaigns, pilot-call feasibility and quotes, surveys.",
    cls=LazyGroup,
    # Plain help pages: Rich's help formatter alone imports more than the whole command needs.
    rich_markup_mode=None,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
admin_app = typer.Typer(help="Clients and API keys.", no_args_is_help=True)
users_app = typer.Typer(help="Console users (people who sign in to the browser console).")
app.add_typer(db_app, name="db")
app.add_typer(admin_app, name="admin")
app.add_typer(users_app, name="users", no_args_is_help=True)


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"pilotdial: {message}", err=True)
    return typer.Exit(code=code)


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Migrate the database to the newest schema (safe to run repeatedly)."""
    from core.db import get_engine
    from core.migrate import current_revision, upgrade
    from core.settings import get_settings

    url = get_settings().sqlalchemy_url()
    upgrade(url, revision)
    typer.echo(
        f"database at revision {current_revision(get_engine(url))} ({url.get_backend_name()})"
    )


@db_app.command("current")
def db_current() -> None:
    """Show the database's schema revision and whether it is current."""
    from core.db import get_engine
    from core.migrate import current_revision, head_revision

    current, head = current_revision(get_engine()), head_revision()
    state = "current" if current == head else "BEHIND: run `pilotdial db upgrade`"
    typer.echo(f"database revision {current or 'none'}; code expects {head} ({state})")
    if current != head:
        raise typer.Exit(code=1)


@admin_app.command("create-client")
def admin_create_client(
    name: str,
    region: Annotated[str, typer.Option(help="Default phone region (ISO 3166 alpha-2)")] = "CN",
    slug: Annotated[str | None, typer.Option(help="Short unique name; derived if omitted")] = None,
) -> None:
    """Create a client (tenant) and print its id."""
    from core.admin import create_client
    from core.db import get_engine, system_session
    from core.migrate import check_schema_current

    check_schema_current(get_engine())
    with system_session() as session:
        client = create_client(session=session, name=name, default_region=region, slug=slug)
    typer.echo(f"created client {client.slug} id={client.id}")


@admin_app.command("list-clients")
def admin_list_clients() -> None:
    """List clients."""
    from sqlmodel import select

    from core.db import system_session
    from core.models import Client

    with system_session() as session:
        for client in session.exec(select(Client).order_by(Client.name)):
            typer.echo(f"{client.id}  {client.slug:<24} {client.default_region}  {client.name}")


@admin_app.command("create-key")
def admin_create_key(
    role: Annotated[str, typer.Option(help="admin, operator, sales, researcher or client")],
    client: Annotated[
        list[str] | None, typer.Option(help="Client id or slug; repeat for staff keys")
    ] = None,
    name: Annotated[str, typer.Option(help="Who holds the key (shown in the audit log)")] = "",
    all_clients: Annotated[bool, typer.Option(help="Admin key that sees every client")] = False,
) -> None:
    """Create an API key and print it once; it is stored only as a hash."""
    from core.admin import issue_key
    from core.db import get_engine, system_session
    from core.migrate import check_schema_current
    from core.models import Role

    if role not in {r.value for r in Role}:
        raise _fail(f"--role {role!r}: use one of {', '.join(r.value for r in Role)}")
    check_schema_current(get_engine())
    with system_session() as session:
        key, plain = issue_key(
            session=session,
            name=name or f"{role} key",
            role=Role(role),
            client_refs=client or [],
            all_clients=all_clients,
        )
    typer.echo(plain)
    typer.echo(
        f"(key {key.prefix}, role {key.role.value}; store it now: it is not shown again)", err=True
    )


@admin_app.command("revoke-key")
def admin_revoke_key(prefix: str) -> None:
    """Revoke a key by its prefix (the 12 characters after `pd_`)."""
    from core.admin import revoke_key
    from core.db import system_session

    with system_session() as session:
        key = revoke_key(session=session, prefix=prefix)
    typer.echo(f"revoked key {key.prefix} ({key.name})")


@users_app.command("create")
def users_create(
    username: str,
    role: Annotated[
        str,
        typer.Option(help="admin, operator, supervisor, sales, researcher, agent or client_user"),
    ],
    client: Annotated[
        list[str] | None, typer.Option(help="Client id or slug; repeat for staff")
    ] = None,
    all_clients: Annotated[bool, typer.Option(help="Admins: act for every client")] = False,
    name: Annotated[str, typer.Option(help="Display name")] = "",
    agent: Annotated[str | None, typer.Option(help="Agents: the seat's id or 工號")] = None,
    locale: Annotated[str, typer.Option(help="zh-Hans, zh-Hant or en")] = "zh-Hans",
    password_stdin: Annotated[
        bool, typer.Option(help="Read the password from standard input (scripts)")
    ] = False,
) -> None:
    """Create a console user (the first admin: --role admin --all-clients)."""
    from sqlmodel import select

    from core.admin import find_client
    from core.db import get_engine, system_session
    from core.migrate import check_schema_current, import_all_models
    from core.users import UserRole, create_user

    if role not in {r.value for r in UserRole}:
        raise _fail(f"--role {role!r}: use one of {', '.join(r.value for r in UserRole)}")
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    import_all_models()
    check_schema_current(get_engine())
    with system_session() as session:
        client_ids = [find_client(session=session, ref=ref).id for ref in client or []]
        agent_id = None
        if agent:
            from dialer.models import AgentSeat

            try:
                seat = session.get(AgentSeat, uuid.UUID(agent))
            except ValueError:
                seat = session.exec(select(AgentSeat).where(AgentSeat.agent_code == agent)).first()
            if seat is None:
                raise _fail(f"--agent {agent!r}: no agent seat has this id or 工號")
            agent_id = seat.id
        user = create_user(
            session=session,
            username=username,
            password=password,
            role=UserRole(role),
            display_name=name,
            client_ids=client_ids,
            all_clients=all_clients,
            agent_id=agent_id,
            locale=locale,
        )
    typer.echo(f"created user {user.username} ({user.role.value}) id={user.id}")


@users_app.command("list")
def users_list() -> None:
    """List console users."""
    from core.db import system_session
    from core.migrate import import_all_models
    from core.users import list_users

    import_all_models()
    with system_session() as session:
        for user in list_users(session=session):
            state = "disabled" if user.disabled_at else "active"
            typer.echo(f"{user.id}  {user.username:<24} {user.role.value:<12} {state}")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address")] = None,
    port: Annotated[int | None, typer.Option(help="Port")] = None,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            max=64,
            help="API processes sharing the port (more than 1 needs PostgreSQL and Redis)",
        ),
    ] = 1,
) -> None:
    """Run the API with uvicorn (refuses to start on an out-of-date schema)."""
    import uvicorn

    from api.main import create_app
    from core.db import dispose_engines, get_engine
    from core.logging import configure_logging
    from core.migrate import check_schema_current
    from core.settings import get_settings

    settings = get_settings()
    settings.check_production()
    configure_logging(level=settings.log_level, json_lines=settings.log_json)
    if workers > 1 and (
        not settings.redis_url or settings.sqlalchemy_url().get_backend_name() != "postgresql"
    ):
        raise _fail(
            f"--workers {workers} needs PILOTDIAL_DATABASE_URL (PostgreSQL) and "
            "PILOTDIAL_REDIS_URL: on the embedded default one API process runs the pacers "
            "and the SQLite file; use --workers 1 or configure production"
        )
    check_schema_current(get_engine())
    host, port = host or settings.api_host, port or settings.api_port
    if workers == 1:
        uvicorn.run(create_app(settings, own_pacers=True), host=host, port=port, log_config=None)
        return
    dispose_engines()  # each process opens its own connections
    uvicorn.run(
        "api.main:serve_app", factory=True, workers=workers, host=host, port=port, log_config=None
    )


@app.command()
def worker(
    burst: Annotated[bool, typer.Option(help="Exit when the queue is empty")] = False,
) -> None:
    """Run an RQ worker for background jobs (needs PILOTDIAL_REDIS_URL)."""
    from core.db import get_engine
    from core.logging import configure_logging
    from core.migrate import check_schema_current, import_all_models
    from core.queue import ping_redis, run_worker
    from core.settings import get_settings

    settings = get_settings()
    settings.check_production()
    if settings.redis_url:
        ping_redis(settings.redis_url)
    configure_logging(level=settings.log_level, json_lines=settings.log_json)
    import_all_models()
    check_schema_current(get_engine())
    if not burst:
        from dialer.run_control import start_supervisor_process

        # the long-lived pacers: any worker adopts a dialing campaign without one
        start_supervisor_process()
        from dialer.recordings import start_purge_process

        start_purge_process()  # expired recordings, hourly (one worker per period does it)
    run_worker(settings, burst=burst)


@app.command()
def demo(
    quick: Annotated[bool, typer.Option(help="Smaller lists, for a fast run")] = False,
    serve: Annotated[
        bool, typer.Option(help="Keep the server (API and console) running afterwards")
    ] = False,
) -> None:
    """Run the whole product once on the embedded default and print what it did."""
    from core.demo import run_demo

    run_demo(quick=quick, serve=serve)


class _NoPandas(importlib.abc.MetaPathFinder):
    """Finds no ``pandas``: see :func:`main`."""

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> None:
        if fullname == "pandas" or fullname.startswith("pandas."):
            raise ModuleNotFoundError("pandas is not used by `pilotdial clean`", name=fullname)
        return None


def main() -> None:
    """Console-script entry point."""
    if sys.argv[1:2] == ["clean"]:
        # pyarrow imports pandas (~0.3 s) the first time it builds an array, only to ask
        # whether its input is a pandas object; ``clean`` never hands it one and never needs
        # pandas, so in this command's own process (never in a test runner or a server that
        # imports this module) pandas is reported missing, which pyarrow takes as "no pandas".
        sys.meta_path.insert(0, _NoPandas())
    try:
        app()
    except PilotdialError as exc:
        typer.echo(f"pilotdial: {exc.message}", err=True)
        sys.exit(2)
    except Exception as exc:
        # SQLAlchemy is imported only by the commands that use the database.
        operational = getattr(sys.modules.get("sqlalchemy.exc"), "OperationalError", None)
        if operational is None or not isinstance(exc, operational):
            raise
        first = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        typer.echo(
            f"pilotdial: PILOTDIAL_DATABASE_URL: cannot reach the database ({first})", err=True
        )
        sys.exit(2)


if __name__ == "__main__":
    main()
