"""The pilotdial command: admin flow, schema checks, and one-line errors for bad configuration."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def _run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("PILOTDIAL_")}
    full_env.update(env)
    return subprocess.run(
        [sys.executable, "-m", "core.cli", *args],
        env=full_env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_admin_flow_on_a_fresh_embedded_database(tmp_path: Path) -> None:
    env = {"PILOTDIAL_DATA_DIR": str(tmp_path / "var")}
    behind = _run(["admin", "create-client", "Acme"], env, tmp_path)
    assert behind.returncode == 2
    assert "pilotdial db upgrade" in behind.stderr
    assert "Traceback" not in behind.stderr

    assert _run(["db", "upgrade"], env, tmp_path).returncode == 0
    created = _run(["admin", "create-client", "Acme Telecom"], env, tmp_path)
    assert created.returncode == 0, created.stderr
    assert "acme-telecom" in created.stdout
    key = _run(
        ["admin", "create-key", "--role", "client", "--client", "acme-telecom"], env, tmp_path
    )
    assert key.returncode == 0, key.stderr
    assert key.stdout.strip().startswith("pd_")
    assert "not shown again" in key.stderr
    # the key is not stored in plain text anywhere in the database file
    assert key.stdout.strip().encode() not in (tmp_path / "var" / "pilotdial.db").read_bytes()

    dup = _run(["admin", "create-client", "Acme Telecom"], env, tmp_path)
    assert dup.returncode == 2
    assert "already exists" in dup.stderr


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"PILOTDIAL_DATABASE_URL": "nonsense"}, "PILOTDIAL_DATABASE_URL"),
        ({"PILOTDIAL_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/x"}, "cannot reach"),
        ({"PILOTDIAL_ENVIRONMENT": "production"}, "PILOTDIAL_SECRET_KEY"),
        (
            {
                "PILOTDIAL_ENVIRONMENT": "production",
                "PILOTDIAL_SECRET_KEY": "x" * 40,
                "PILOTDIAL_DATABASE_URL": "postgresql://u@127.0.0.1/x",
                "PILOTDIAL_REDIS_URL": "redis://127.0.0.1:1/0",
            },
            "PILOTDIAL_REDIS_URL",
        ),
    ],
)
def test_bad_configuration_is_one_line_not_a_traceback(
    tmp_path: Path, env: dict[str, str], needle: str
) -> None:
    command = ["worker", "--burst"] if "PILOTDIAL_ENVIRONMENT" in env else ["db", "upgrade"]
    result = _run(command, {"PILOTDIAL_DATA_DIR": str(tmp_path), **env}, tmp_path)
    assert result.returncode == 2, result.stderr
    assert needle in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_api_refuses_to_start_on_an_old_schema(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from api.main import create_app
    from core.errors import SchemaOutOfDate
    from core.settings import Settings

    settings = Settings(data_dir=tmp_path, _env_file=None)
    with (
        pytest.raises(SchemaOutOfDate, match="pilotdial db upgrade"),
        TestClient(create_app(settings)),
    ):
        pass


# ------------------------------------------------------------------ a CLI that starts in a blink

_HEAVY = ("fastapi", "sqlalchemy", "sqlmodel", "starlette", "uvicorn")
_CLEANING = ("phonenumbers", "pyarrow", "numpy", "pandas")


def _loaded_after(
    commands: list[list[str]], cwd: Path, *, modules: bool = False
) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run ``pilotdial ARGS`` for each of ``commands`` in one fresh interpreter.

    Returns the process and the top-level packages imported by the end (with ``modules``:
    every module's full name). The phone prefix cache is ``cwd / "cache"``.
    """
    name = "m" if modules else "m.split('.')[0]"
    code = (
        "import atexit, sys\n"
        f"atexit.register(lambda: print('LOADED', ' '.join(sorted({{{name} "
        "for m, loaded in sys.modules.items() if loaded is not None}))))\n"
        "from core.cli import main\n"
        f"for args in {commands!r}:\n"
        "    sys.argv = ['pilotdial', *args]\n"
        "    try:\n"
        "        main()\n"
        "    except SystemExit as exit:\n"
        "        if exit.code:\n"
        "            raise\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PILOTDIAL_")}
    env["PILOTDIAL_DATA_DIR"] = str(cwd / "var")
    env["PILOTDIAL_CACHE_DIR"] = str(cwd / "cache")
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    line = next(line for line in result.stdout.splitlines() if line.startswith("LOADED"))
    return result, set(line.split()[1:])


def test_help_pages_import_no_server_or_database_library(tmp_path: Path) -> None:
    pages = [
        ["--help"],
        ["clean", "--help"],
        ["db", "--help"],
        ["db", "upgrade", "--help"],
        ["admin", "create-key", "--help"],
        ["serve", "--help"],
        ["worker", "--help"],
        ["demo", "--help"],
    ]
    result, loaded = _loaded_after(pages, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("Usage:") == len(pages)
    assert not loaded & set(_HEAVY), sorted(loaded & set(_HEAVY))
    # Nor the phone metadata and columnar libraries: a help page cleans nothing.
    assert not loaded & set(_CLEANING), sorted(loaded & set(_CLEANING))


def test_top_level_help_lists_every_domain_command_without_importing_domains(
    tmp_path: Path,
) -> None:
    from core.cli import LAZY_COMMANDS

    result, loaded = _loaded_after([["--help"]], tmp_path)
    for name in ["serve", "worker", "db", "admin", "demo", *LAZY_COMMANDS]:
        assert f"  {name} " in result.stdout, name
    assert not loaded & {"campaigns", "dialer", "feasibility", "surveys"}


def test_clean_imports_only_what_cleaning_needs(tmp_path: Path) -> None:
    source = tmp_path / "leads.csv"
    source.write_text("name,phone\nWang,13800138000\nLi,+86 139 1234 5678\nZhao,n/a\n")
    args = ["clean", str(source), "--out", str(tmp_path / "c.csv")]
    args += ["--rejects", str(tmp_path / "r.csv"), "--report", str(tmp_path / "p.json")]
    result, loaded = _loaded_after([args], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "3 rows in: 2 kept, 1 invalid" in result.stderr
    assert not loaded & set(_HEAVY), sorted(loaded & set(_HEAVY))
    assert not loaded & {"campaigns", "dialer", "feasibility", "surveys", "api"}
    # pyarrow would import pandas (~0.3 s) only to ask whether its input is a pandas object.
    assert "pandas" not in loaded


def test_clean_reads_the_phone_prefixes_from_the_cache_once_it_is_warm(tmp_path: Path) -> None:
    """The second run never loads libphonenumber's geocoding table (~0.45 s, ~100 MB), and
    enriches exactly as the first did (which built the country's indexes from it)."""
    source = tmp_path / "leads.csv"
    source.write_text(
        "name,phone\nWang,13800138000\nLi,010 6552 9988\nZhao,+49 30 1234567\nQian,n/a\n"
    )
    outputs = []
    for run in ("cold", "warm"):
        args = ["clean", str(source), "--out", str(tmp_path / f"{run}.csv")]
        args += ["--rejects", str(tmp_path / f"{run}_r.csv")]
        args += ["--report", str(tmp_path / f"{run}.json")]
        result, loaded = _loaded_after([args], tmp_path, modules=True)
        assert result.returncode == 0, result.stderr
        outputs.append((run, loaded, (tmp_path / f"{run}.csv").read_text()))
    (_, cold_modules, cold), (_, warm_modules, warm) = outputs
    assert "phonenumbers.geodata" in cold_modules
    assert "phonenumbers.geodata" not in warm_modules
    assert warm == cold
    assert "Beijing" in warm
    assert "Berlin" in warm
    assert any((tmp_path / "cache").rglob("prefix-0-86-en.v*.npz"))


def test_the_lazy_command_table_matches_what_the_domains_register() -> None:
    import importlib

    import typer

    from core.cli import DOMAIN_CLI_MODULES, LAZY_COMMANDS

    registered: dict[str, tuple[str, str]] = {}
    for module_name in DOMAIN_CLI_MODULES:
        holder = typer.Typer()
        importlib.import_module(module_name).register(holder)
        for name, command in typer.main.get_group(holder).commands.items():
            registered[name] = (module_name, command.get_short_help_str(1000))
    lazy = {name: entry for name, entry in LAZY_COMMANDS.items() if entry[0] in DOMAIN_CLI_MODULES}
    # A module may stay eager (no entry); one with entries must list all its commands, as written.
    lazy_modules = {module for module, _ in lazy.values()}
    assert lazy == {n: e for n, e in registered.items() if e[0] in lazy_modules}


def test_a_lazy_command_runs_and_a_bad_role_is_one_line(tmp_path: Path) -> None:
    env = {"PILOTDIAL_DATA_DIR": str(tmp_path / "var")}
    survey = _run(["survey", "--help"], env, tmp_path)
    assert survey.returncode == 0, survey.stderr
    assert "rates" in survey.stdout
    assert _run(["db", "upgrade"], env, tmp_path).returncode == 0
    bad = _run(["admin", "create-key", "--role", "wizard"], env, tmp_path)
    assert bad.returncode == 2
    assert "use one of admin" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_several_api_processes_are_refused_on_the_embedded_default(tmp_path: Path) -> None:
    env = {"PILOTDIAL_DATA_DIR": str(tmp_path / "var")}
    assert _run(["db", "upgrade"], env, tmp_path).returncode == 0
    result = _run(["serve", "--workers", "2", "--port", "1"], env, tmp_path)
    assert result.returncode == 2
    assert "--workers 2 needs PILOTDIAL_DATABASE_URL (PostgreSQL) and PILOTDIAL_REDIS_URL" in (
        result.stderr
    )
    assert "Traceback" not in result.stderr
