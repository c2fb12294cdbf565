"""Sign-in, session cookies, CSRF, throttling, password change, disabling, the users CLI."""

from __future__ import annotations

from typing import Any

from console_builders import PASSWORD, csrf_of, make_user, sign_in
from fastapi.testclient import TestClient

from helpers import Tenant


def test_sign_in_sets_an_httponly_samesite_cookie_and_lands_on_the_role_home(
    app: Any, alpha: Tenant
) -> None:
    make_user("olga", "operator", [alpha.client_id])
    http = TestClient(app.app, follow_redirects=False)
    response = http.post("/console/login", data={"username": "olga", "password": PASSWORD})
    assert response.status_code == 303
    assert response.headers["location"] == "/console/campaigns"
    cookie = next(c for c in response.headers.get_list("set-cookie") if c.startswith("pd_session="))
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Secure" not in cookie  # plain HTTP here; set over TLS
    assert http.get("/console/campaigns").status_code == 200


def test_pages_without_a_session_redirect_to_sign_in(app: Any) -> None:
    http = TestClient(app.app, follow_redirects=False)
    response = http.get("/console/campaigns")
    assert response.status_code == 303
    assert response.headers["location"] == "/console/login?next=/console/campaigns"


def test_wrong_passwords_are_throttled_even_before_the_right_one(app: Any, alpha: Tenant) -> None:
    make_user("carl", "client_user", [alpha.client_id])
    http = TestClient(app.app, follow_redirects=False)
    for _ in range(5):
        wrong = http.post("/console/login", data={"username": "carl", "password": "nope nope"})
        assert wrong.status_code == 401
    blocked = http.post("/console/login", data={"username": "carl", "password": PASSWORD})
    assert blocked.status_code == 429
    assert "pd_session" not in blocked.headers.get("set-cookie", "")


def test_unknown_user_fails_like_a_wrong_password(app: Any) -> None:
    http = TestClient(app.app, follow_redirects=False)
    response = http.post("/console/login", data={"username": "ghost", "password": PASSWORD})
    assert response.status_code == 401


def test_every_form_needs_the_session_csrf_token(app: Any, alpha: Tenant) -> None:
    user_id = make_user("olga", "operator", [alpha.client_id])
    browser = sign_in(app.app, "olga", user_id)
    forged = browser.http.post("/console/logout", data={"csrf_token": "forged"})
    assert forged.status_code == 403
    missing = browser.http.post("/console/logout")
    assert missing.status_code == 403
    assert browser.http.get("/console/campaigns").status_code == 200  # still signed in
    done = browser.post("/console/logout")
    assert done.status_code == 200
    assert "/console/login" in str(done.url)
    again = browser.http.get("/console/campaigns", follow_redirects=False)
    assert again.status_code == 303  # the session is gone on the server


def test_the_api_accepts_the_cookie_for_reads_only(app: Any, alpha: Tenant) -> None:
    user_id = make_user("carl", "client_user", [alpha.client_id])
    browser = sign_in(app.app, "carl", user_id)
    assert browser.http.get("/lists").status_code == 200
    # a cross-site form could post with the cookie: the API wants a key for any change
    posted = browser.http.post("/jobs/summary")
    assert posted.status_code == 401


def test_password_change_checks_the_current_one(app: Any, alpha: Tenant) -> None:
    user_id = make_user("olga", "operator", [alpha.client_id])
    browser = sign_in(app.app, "olga", user_id)
    wrong = browser.post(
        "/console/password",
        {"current": "not it at all", "new": "a new secret 1", "repeat": "a new secret 1"},
    )
    assert wrong.status_code == 422
    ok = browser.post(
        "/console/password",
        {"current": PASSWORD, "new": "a new secret 1", "repeat": "a new secret 1"},
    )
    assert ok.status_code == 200
    fresh = TestClient(app.app, follow_redirects=False)
    old = fresh.post("/console/login", data={"username": "olga", "password": PASSWORD})
    assert old.status_code == 401
    new = fresh.post("/console/login", data={"username": "olga", "password": "a new secret 1"})
    assert new.status_code == 303


def test_admin_creates_and_disables_users_and_a_disabled_user_is_signed_out(
    app: Any, alpha: Tenant
) -> None:
    admin_id = make_user("root", "admin", all_clients=True)
    admin = sign_in(app.app, "root", admin_id)
    short = admin.post(
        "/console/admin/users",
        {"username": "carl", "password": "short", "role": "client_user",
         "client_ids": str(alpha.client_id)},
    )  # fmt: skip
    assert short.status_code == 422
    assert "10" in short.text  # says how long a password must be
    created = admin.post(
        "/console/admin/users",
        {"username": "carl", "password": PASSWORD, "role": "client_user",
         "client_ids": str(alpha.client_id), "locale": "zh-Hant"},
    )  # fmt: skip
    assert created.status_code == 200
    assert "carl" in created.text
    from core.db import system_session
    from core.users import User

    with system_session() as session:
        from sqlmodel import select

        carl = session.exec(select(User).where(User.username == "carl")).one()
    client = sign_in(app.app, "carl", carl.id)
    assert "名單" in client.http.get("/console/lists").text  # zh-Hant labels
    disabled = admin.post(f"/console/admin/users/{carl.id}/disable")
    assert disabled.status_code == 200
    gone = client.http.get("/console/lists", follow_redirects=False)
    assert gone.status_code == 303


def test_only_admins_reach_the_user_pages(app: Any, alpha: Tenant) -> None:
    user_id = make_user("olga", "operator", [alpha.client_id])
    browser = sign_in(app.app, "olga", user_id)
    assert browser.http.get("/console/admin/users").status_code == 403


def test_cli_creates_the_first_admin(app: Any) -> None:
    from typer.testing import CliRunner

    from core.cli import app as cli

    result = CliRunner().invoke(
        cli,
        ["users", "create", "first", "--role", "admin", "--all-clients", "--password-stdin"],
        input=PASSWORD + "\n",
    )
    assert result.exit_code == 0, result.output
    http = TestClient(app.app, follow_redirects=False)
    response = http.post("/console/login", data={"username": "first", "password": PASSWORD})
    assert response.status_code == 303


def test_login_page_is_in_the_last_language_and_escapes_next(app: Any) -> None:
    http = TestClient(app.app)
    http.cookies.set("pd_lang", "en")
    page = http.get("/console/login?next=https://evil.example/")
    assert "Sign in to Pilotdial" in page.text
    assert "evil.example" not in page.text
    assert csrf_of('name="csrf_token" value="x"') == "x"


def test_an_agents_cookie_reaches_only_its_own_seat_stream_in_the_api(
    app: Any, alpha: Tenant
) -> None:
    from console_builders import console_objects_for, make_agent

    ids = console_objects_for(alpha.client_id, with_run=False)
    agent_id = make_agent(alpha.client_id)
    other = make_agent(alpha.client_id, code="A002", name="王伟")
    ann = sign_in(app.app, "ann", make_user("ann", "agent", [alpha.client_id], agent_id=agent_id))
    own = ann.http.get(f"/agents/{agent_id}/events?once=true")
    assert own.status_code == 200
    assert "snapshot" in own.text
    for url in (
        f"/agents/{other}/events?once=true",
        f"/lists/{ids['list_id']}/cleaned.csv",
        f"/campaigns/{ids['campaign_id']}/attempts.csv",
        "/agents",
    ):
        assert ann.http.get(url).status_code == 401, url
    assert ann.http.get("/console/campaigns").status_code == 403  # not an agent's page
