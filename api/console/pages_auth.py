"""Sign-in, sign-out, password, language, home, and the admin's user pages."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session, select

from api.console.i18n import environment, pick_locale
from api.console.web import COOKIE, LANG_COOKIE, Console, ConsoleDep, _request_session
from core.errors import InvalidInput, NotFound, PilotdialError
from core.models import Client
from core.users import (
    LOCALES,
    SESSION_LIFETIME,
    LoginFailed,
    LoginThrottled,
    User,
    UserRole,
    change_password,
    create_user,
    end_session,
    get_user,
    list_users,
    set_disabled,
    sign_in,
    user_client_ids,
)

router = APIRouter()

#: Where each role starts after signing in.
HOME = {
    UserRole.admin: "/console/campaigns",
    UserRole.operator: "/console/campaigns",
    UserRole.supervisor: "/console/campaigns",
    UserRole.sales: "/console/feasibility",
    UserRole.researcher: "/console/questionnaires",
    UserRole.agent: "/console/agent",
    UserRole.client_user: "/console/lists",
}

_RawSession = Annotated[Session, Depends(_request_session, scope="function")]


def _safe_next(target: str | None) -> str | None:
    # only our own pages: never an absolute or scheme-relative address (open redirect)
    if target and target.startswith("/console/") and not target.startswith("//"):
        return target
    return None


def _login_page(request: Request, *, error: str | None, status: int, next_: str | None) -> Response:
    locale = pick_locale(request.cookies.get(LANG_COOKIE))
    html = (
        environment(locale)
        .get_template("login.html")
        .render(console=None, error=error, next=next_ or "")
    )
    return HTMLResponse(html, status_code=status)


@router.get("/login")
def login_form(request: Request, next: str | None = None) -> Response:
    """The sign-in form."""
    return _login_page(request, error=None, status=200, next_=_safe_next(next))


@router.post("/login")
def login(
    request: Request,
    session: _RawSession,
    username: Annotated[str, Form()],
    password: Annotated[str, Form()],
    next: Annotated[str, Form()] = "",
) -> Response:
    """Check the password, set the session cookie, go to the role's home page."""
    address = request.client.host if request.client else "unknown"
    try:
        signed = sign_in(session=session, username=username, password=password, address=address)
    except (LoginFailed, LoginThrottled) as exc:
        session.commit()  # the failure counts even though the sign-in is refused
        status = 429 if isinstance(exc, LoginThrottled) else 401
        return _login_page(request, error=exc.code, status=status, next_=_safe_next(next))
    target = _safe_next(next) or HOME[signed.user.role]
    response = RedirectResponse(target, status_code=303)
    secure = request.url.scheme == "https"
    response.set_cookie(
        COOKIE,
        signed.token,
        max_age=int(SESSION_LIFETIME.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=secure,
        path="/",
    )
    response.set_cookie(LANG_COOKIE, signed.user.locale, samesite="lax", secure=secure, path="/")
    return response


@router.post("/logout")
def logout(console: ConsoleDep) -> Response:
    """End this browser's session."""
    token = console.request.cookies.get(COOKIE, "")
    end_session(session=console.session, token=token)
    response = RedirectResponse("/console/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


@router.get("")
@router.get("/")
def home(console: ConsoleDep) -> Response:
    """The role's start page."""
    return RedirectResponse(HOME[console.user.role], status_code=303)


@router.post("/language")
def set_language(
    console: ConsoleDep, locale: Annotated[str, Form()], back: Annotated[str, Form()] = ""
) -> Response:
    """Keep the user's language (every label, date and number follows it)."""
    if locale not in LOCALES:
        raise InvalidInput(f"language {locale!r}: choose one of {', '.join(LOCALES)}")
    console.user.locale = locale
    console.session.add(console.user)
    response = RedirectResponse(_safe_next(back) or HOME[console.user.role], status_code=303)
    response.set_cookie(LANG_COOKIE, locale, samesite="lax", path="/")
    return response


@router.get("/password")
def password_form(console: ConsoleDep) -> Response:
    """Change my password."""
    return console.render("password.html", error=None, done=False)


@router.post("/password")
def password_change(
    console: ConsoleDep,
    current: Annotated[str, Form()],
    new: Annotated[str, Form()],
    repeat: Annotated[str, Form()],
) -> Response:
    """Check the current password and store the new one."""
    if new != repeat:
        return console.render("password.html", status_code=422, error="mismatch", done=False)
    try:
        change_password(session=console.session, user=console.user, current=current, new=new)
    except InvalidInput as exc:
        return console.render(
            "password.html", status_code=422, error=console.describe(exc), done=False
        )
    return console.render("password.html", error=None, done=True)


# --------------------------------------------------------------------------- admin: users


def _visible(console: Console, user: User) -> bool:
    """An admin for some clients sees only users acting for no other client."""
    if console.principal.all_clients:
        return True
    granted = user_client_ids(session=console.session, user=user)
    return not user.all_clients and bool(granted) and granted <= console.principal.scope


def _user(console: Console, user_id: uuid.UUID) -> User:
    user = get_user(session=console.session, user_id=user_id)
    if not _visible(console, user):
        raise NotFound("no user with this id")
    return user


def _users_page(console: ConsoleDep, *, error: str | None = None, status: int = 200) -> Response:
    clients = list(console.session.exec(select(Client).order_by(Client.name)))
    users = [u for u in list_users(session=console.session) if _visible(console, u)]
    grants = {u.id: user_client_ids(session=console.session, user=u) for u in users}
    from dialer.agent_service import list_agents

    agents = list_agents(session=console.session, client_scope=console.principal.scope)
    return console.render(
        "admin_users.html",
        status_code=status,
        users=users,
        grants=grants,
        clients=clients,
        client_names={c.id: c.name for c in clients},
        agents=agents,
        roles=list(UserRole),
        locales=LOCALES,
        error=error,
    )


@router.get("/admin/users")
def users_page(console: ConsoleDep) -> Response:
    """Users: create, disable, enable (admins only)."""
    console.require(UserRole.admin)
    return _users_page(console)


@router.post("/admin/users")
def users_create(
    console: ConsoleDep,
    username: Annotated[str, Form()],
    password: Annotated[str, Form()],
    role: Annotated[UserRole, Form()],
    display_name: Annotated[str, Form()] = "",
    client_ids: Annotated[list[uuid.UUID] | None, Form()] = None,
    agent_id: Annotated[str, Form()] = "",
    locale: Annotated[str, Form()] = "zh-Hans",
) -> Response:
    """Create a user (admins only); a problem is shown on the form, nothing is stored."""
    console.require(UserRole.admin)
    try:
        for client_id in client_ids or []:
            console.acting_client(client_id)  # only clients the admin may act for
        with console.session.begin_nested():
            create_user(
                session=console.session,
                username=username,
                password=password,
                role=role,
                display_name=display_name,
                client_ids=client_ids or [],
                agent_id=uuid.UUID(agent_id) if agent_id else None,
                locale=locale,
            )
    except PilotdialError as exc:
        return _users_page(console, error=console.describe(exc), status=422)
    return RedirectResponse("/console/admin/users", status_code=303)


@router.post("/admin/users/{user_id}/disable")
def users_disable(console: ConsoleDep, user_id: uuid.UUID) -> Response:
    """Disable a user: every session of theirs ends."""
    console.require(UserRole.admin)
    user = _user(console, user_id)
    if user.id == console.user.id:
        raise InvalidInput("you cannot disable yourself; ask another administrator")
    set_disabled(session=console.session, user=user, disabled=True)
    return RedirectResponse("/console/admin/users", status_code=303)


@router.post("/admin/users/{user_id}/enable")
def users_enable(console: ConsoleDep, user_id: uuid.UUID) -> Response:
    """Enable a disabled user again."""
    console.require(UserRole.admin)
    user = _user(console, user_id)
    set_disabled(session=console.session, user=user, disabled=False)
    return RedirectResponse("/console/admin/users", status_code=303)
