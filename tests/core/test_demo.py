"""`pilotdial demo` can be run again on the same data directory."""

from __future__ import annotations

from core.db import get_engine, system_session
from core.demo import fresh_demo_client


def test_each_demo_run_gets_a_client_of_its_own(sqlite_url: str) -> None:
    """A second run reused the first run's client: its survey already existed (409) and its
    do-not-call numbers were "0 stored"; a fresh client makes every run start clean."""
    engine = get_engine(sqlite_url)
    seen = []
    for _run in range(3):
        with system_session(engine) as session:
            client = fresh_demo_client(session)
            seen.append((client.id, client.slug, client.name))
    assert len({client_id for client_id, _, _ in seen}) == 3
    assert [slug for _, slug, _ in seen] == ["demo-client", "demo-client-2", "demo-client-3"]
    assert seen[1][2] == "Demo Client Ltd (run 2)"


def test_each_demo_run_makes_console_users_that_can_sign_in(sqlite_url: str) -> None:
    from core.demo import create_demo_users
    from core.users import sign_in

    engine = get_engine(sqlite_url)
    names: list[str] = []
    for _run in range(2):
        with system_session(engine) as session:
            client = fresh_demo_client(session)
            users = create_demo_users(session, client)
            names += [username for username, _role, _password in users]
            username, role, password = users[1]
            assert role == "operator"
            assert sign_in(session=session, username=username, password=password, address="t")
    assert len(set(names)) == 12  # a second run does not collide with the first
    assert "demo-agent" in names
    assert "demo-client-user-2" in names
