"""The console's request plumbing: the signed-in user, CSRF, rendering and error pages.

A page depends on :data:`ConsoleDep`. It reads the session cookie, loads the user, turns it
into the API's :class:`~core.security.Principal` and scopes the request's one database session
to the user's clients with the same hook as the API, so every service function a page calls
sees exactly what the user's API key would (another client's object: 404). Every request that
is not GET/HEAD must carry the session's CSRF token (form field ``csrf_token`` or header
``X-CSRF-Token``, which htmx sends from ``<body hx-headers>``), or it is refused with 403
before anything runs.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session

from api.console.i18n import environment, pick_locale, translations
from api.console.problems import explanation, status_of
from core.audit import Actor
from core.db import scope_session, system_session
from core.errors import PermissionDenied, PilotdialError
from core.security import Principal
from core.users import (
    ConsoleSession,
    User,
    UserRole,
    csrf_matches,
    principal_for,
    session_user,
)

__all__ = [
    "COOKIE",
    "LANG_COOKIE",
    "SAFE_METHODS",
    "Console",
    "ConsoleDep",
    "CsrfRejected",
    "SignInRequired",
    "describe",
    "error_page",
    "sign_in_redirect",
]

COOKIE = "pd_session"
LANG_COOKIE = "pd_lang"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class SignInRequired(PilotdialError):
    code = "sign-in-required"
    title = "Sign in first"


class CsrfRejected(PermissionDenied):
    code = "csrf-rejected"
    title = "Form expired"


def _request_session(request: Request) -> Iterator[Session]:
    with system_session(request.app.state.engine) as session:
        yield session  # scoped to the user's clients by get_console


async def _presented_csrf(request: Request) -> str | None:
    """The CSRF token the request carries (the form is parsed once and cached by Starlette)."""
    if request.method in SAFE_METHODS:
        return None
    header = request.headers.get("x-csrf-token")
    if header:
        return header
    if "form" in request.headers.get("content-type", ""):
        value = (await request.form()).get("csrf_token")
        return value if isinstance(value, str) else None
    return None


@dataclass
class Console:
    """One console request: who asks, in which language, and the scoped session."""

    request: Request
    session: Session
    user: User
    principal: Principal
    row: ConsoleSession
    locale: str

    @property
    def actor(self) -> Actor:
        return Actor(name=self.principal.name, key_id=self.user.id)

    @property
    def csrf_token(self) -> str:
        return self.row.csrf_token

    def has_role(self, *roles: UserRole) -> bool:
        return self.user.role is UserRole.admin or self.user.role in roles

    def require(self, *roles: UserRole) -> None:
        """Refuse users whose role is not among ``roles`` (admins always pass)."""
        if not self.has_role(*roles):
            raise PermissionDenied(
                "this page needs one of the roles: " + ", ".join(sorted(r.value for r in roles))
            )

    def acting_client(self, chosen: uuid.UUID | None) -> uuid.UUID:
        """The client a create acts for: the one chosen in the form, or the only one."""
        if chosen is not None:
            if chosen not in self.principal.scope:
                from core.errors import NotFound

                raise NotFound(f"client {chosen} does not exist")
            return chosen
        return self.principal.acting_client()

    def describe(self, exc: PilotdialError) -> str:
        """A refused request in the user's language: what went wrong and what to do, then the
        service's own English sentence as the details (English users see that sentence)."""
        return describe(self.locale, exc.code, exc.message, status_of(exc))

    def render(self, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        """Render a template in the user's language."""
        html = environment(self.locale).get_template(template).render(console=self, **context)
        return HTMLResponse(html, status_code=status_code)


def get_console(
    request: Request,
    session: Annotated[Session, Depends(_request_session, scope="function")],
    presented: Annotated[str | None, Depends(_presented_csrf)],
) -> Console:
    """The signed-in user of this request, or a redirect to the sign-in page."""
    token = request.cookies.get(COOKIE)
    found = session_user(session=session, token=token) if token else None
    if found is None:
        raise SignInRequired("sign in to use the console")
    user, row = found
    if request.method not in SAFE_METHODS and not csrf_matches(row, presented):
        raise CsrfRejected("the form has expired or did not come from this console; reload it")
    principal = principal_for(session=session, user=user)
    scope_session(session, principal.scope)
    return Console(
        request=request,
        session=session,
        user=user,
        principal=principal,
        row=row,
        locale=pick_locale(user.locale),
    )


ConsoleDep = Annotated[Console, Depends(get_console)]


def sign_in_redirect(request: Request) -> Response:
    """To the sign-in page, coming back here afterwards (htmx: a full-page redirect)."""
    target = "/console/login?next=" + quote(request.url.path, safe="/")
    if request.headers.get("hx-request"):
        return Response(status_code=204, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)


def describe(locale: str, code: str | None, detail: str, status: int | None = None) -> str:
    """``detail`` led by the translated sentence for ``code`` (English: ``detail`` alone)."""
    sentence = explanation(code, status)
    if locale == "en" or sentence is None:
        return detail
    gettext = translations(locale).gettext
    return f"{gettext(sentence)} {gettext('Details:')} {detail}"


def error_page(
    request: Request, *, status: int, title: str, detail: str, code: str | None = None
) -> HTMLResponse:
    """An error as a page in the visitor's language (the language cookie; no database)."""
    locale = pick_locale(request.cookies.get(LANG_COOKIE))
    sentence = explanation(code, status)
    html = (
        environment(locale)
        .get_template("error.html")
        .render(console=None, status=status, title=title, detail=detail, explanation=sentence)
    )
    return HTMLResponse(html, status_code=status)
