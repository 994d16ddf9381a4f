"""Signing in to the console, as a browser does it: an admin invites an agent, the agent opens the
one-time link, chooses a password and is signed in by an HttpOnly cookie; later sign-ins take
the email and the password.  Changes need the session's CSRF token and the console's origin;
wrong passwords are rate-limited; a session ends when idle, at its absolute end, on sign-out —
and the agent's socket opened by it closes within seconds.  On both backends."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest

from centralita.gateway import TOKEN_REFUSED
from router.service import ManualClock
from tests.e2e.conftest import Engine, StartEngine
from tests.support.work import Workspace, router_active, seed_workspace_of

NOW = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)
PASSWORD = "caballo correcto batería grapa"


class Browser:
    """One browser: its own cookie jar, and the CSRF token its page keeps in memory."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.csrf: str | None = None
        self.origin = str(engine.client.make_url("/")).rstrip("/")

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        csrf: bool = True,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, Any], aiohttp.ClientResponse]:
        sent = {"Origin": self.origin}
        if csrf and self.csrf is not None:
            sent["X-CSRF-Token"] = self.csrf
        sent.update(headers or {})
        async with self.http.request(
            method, str(self.engine.client.make_url(path)), json=body, headers=sent
        ) as response:
            return response.status, await response.json(), response

    async def signed_in(self, status: int, body: dict[str, Any]) -> dict[str, Any]:
        assert status == 200, body
        self.csrf = body["csrf_token"]
        return body

    async def sign_in(self, email: str, password: str = PASSWORD) -> dict[str, Any]:
        status, body, _ = await self.call("POST", "/api/auth/sign-in", {"email": email, "password": password})
        return await self.signed_in(status, body)

    def cookie(self) -> Any:
        return next((c for c in self.http.cookie_jar if c.key == "centralita_session"), None)

    async def close(self) -> None:
        await self.http.close()


@dataclass
class Scene:
    engine: Engine
    clock: ManualClock
    a: Workspace
    b: Workspace
    browsers: list[Browser] = field(default_factory=list)

    def browser(self) -> Browser:
        browser = Browser(self.engine)
        self.browsers.append(browser)
        return browser

    async def invite(self, email: str, ws: Workspace | None = None) -> tuple[int, dict[str, Any]]:
        response = await self.engine.client.post(
            "/api/admin/invitations", json={"email": email}, headers=(ws or self.a).auth("admin")
        )
        return response.status, await response.json()

    async def invited(self, email: str, password: str = PASSWORD) -> Browser:
        """An agent who opened an invitation and chose ``password``: signed in."""
        status, invitation = await self.invite(email)
        assert status == 201, invitation
        browser = self.browser()
        secret = invitation["url"].split("#", 1)[1]
        status, body, _ = await browser.call(
            "POST", "/api/auth/invitation", {"invitation": secret, "password": password}
        )
        await browser.signed_in(status, body)
        return browser


@pytest.fixture
async def scene(start_engine: StartEngine, work_secrets: None) -> AsyncIterator[Scene]:
    seeded: dict[str, Workspace] = {}

    async def seed(db: Any) -> None:
        seeded["alfa"] = await seed_workspace_of(db, "alfa", "113829475016351")
        seeded["beta"] = await seed_workspace_of(db, "beta", "113829475016352")

    clock = ManualClock(NOW)
    engine = await start_engine(
        seed=seed, clock=clock, token_recheck_s=0.2, session_idle_s=3600.0, session_absolute_s=8 * 3600.0
    )
    for ws in seeded.values():
        await router_active(engine, ws.id)
    found = Scene(engine, clock, seeded["alfa"], seeded["beta"])
    yield found
    for browser in found.browsers:
        await browser.close()


async def test_an_invited_agent_chooses_a_password_and_is_signed_in_by_a_cookie(scene: Scene) -> None:
    status, invitation = await scene.invite("Ana@Alfa.example")
    assert status == 201, invitation
    assert invitation["agent"]["name"] == "Ana" and invitation["workspace"] == "alfa"
    assert "/console/invitation#inv_" in invitation["url"]  # the secret rides in the fragment
    secret = invitation["url"].split("#", 1)[1]

    browser = scene.browser()
    status, body, response = await browser.call(
        "POST", "/api/auth/invitation", {"invitation": secret, "password": "corta"}
    )
    assert (
        status == 400 and body["error"]["field"] == "password" and "10 characters" in body["error"]["message"]
    )
    status, body, response = await browser.call(
        "POST", "/api/auth/invitation", {"invitation": secret, "password": PASSWORD}
    )
    session = await browser.signed_in(status, body)
    assert session["agent"]["email"] == "ana@alfa.example" and session["role"] == "agent"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    assert session["expires_at"] == datetime(2026, 3, 10, 23, 0, tzinfo=UTC).isoformat()

    status, me, _ = await browser.call("GET", "/api/auth/session")
    assert status == 200 and me["agent"]["name"] == "Ana" and me["csrf_token"] == session["csrf_token"]
    status, listed, _ = await browser.call("GET", "/api/conversations")
    assert status == 200 and "items" in listed  # the cookie alone authenticates the API

    again = scene.browser()
    status, body, _ = await again.call(
        "POST", "/api/auth/invitation", {"invitation": secret, "password": PASSWORD}
    )
    assert (
        status == 401
        and body["error"]["field"] == "invitation"
        and "used already" in body["error"]["message"]
    )
    assert again.cookie() is None


async def test_a_signed_up_agent_signs_in_with_email_and_password_and_a_wrong_one_says_nothing_more(
    scene: Scene,
) -> None:
    await scene.invited("beto@alfa.example")
    browser = scene.browser()
    status, wrong, _ = await browser.call(
        "POST", "/api/auth/sign-in", {"email": "beto@alfa.example", "password": "no es la clave"}
    )
    status_unknown, unknown, _ = await browser.call(
        "POST", "/api/auth/sign-in", {"email": "nadie@alfa.example", "password": "no es la clave"}
    )
    assert status == status_unknown == 401
    assert (
        wrong
        == unknown
        == {"error": {"code": "unauthenticated", "message": "wrong email or password", "field": "password"}}
    )
    assert browser.cookie() is None
    session = await browser.sign_in("BETO@alfa.example")
    assert session["agent"]["name"] == "Beto" and session["workspace"] == "alfa"
    status, body, _ = await browser.call("POST", "/api/auth/sign-in", {"email": "beto@alfa.example"})
    assert status == 400 and body["error"]["field"] == "password"


async def test_a_change_needs_the_sessions_csrf_token_and_the_consoles_origin(scene: Scene) -> None:
    carla = await scene.invited("carla@alfa.example")  # a supervisor
    conversation = await scene.a.add_conversation(scene.engine.database, status="waiting", now=NOW)
    path = f"/api/conversations/{conversation}/notes"
    status, body, _ = await carla.call("POST", path, {"text": "revisar"}, csrf=False)
    assert status == 403 and body["error"]["field"] == "X-CSRF-Token"
    status, body, _ = await carla.call("POST", path, {"text": "revisar"}, headers={"X-CSRF-Token": "0" * 40})
    assert status == 403 and body["error"]["field"] == "X-CSRF-Token"
    status, body, _ = await carla.call(
        "POST", path, {"text": "revisar"}, headers={"Origin": "https://evil.example"}
    )
    assert status == 403 and body["error"]["field"] == "Origin"
    status, body, _ = await carla.call("POST", path, {"text": "revisar"})
    assert status == 201 and body["text"] == "revisar"
    # A bearer token needs no CSRF token: no browser sends it on its own.
    response = await scene.engine.client.post(path, json={"text": "script"}, headers=scene.a.auth("carla"))
    assert response.status == 201


async def test_too_many_wrong_passwords_lock_the_email_until_the_window_passes(scene: Scene) -> None:
    await scene.invited("ana@alfa.example")
    browser = scene.browser()
    for _ in range(5):
        status, _, _ = await browser.call(
            "POST", "/api/auth/sign-in", {"email": "ana@alfa.example", "password": "adivinando..."}
        )
        assert status == 401
    status, body, response = await browser.call(
        "POST", "/api/auth/sign-in", {"email": "ana@alfa.example", "password": PASSWORD}
    )
    assert (
        status == 429 and body["error"]["code"] == "too_many_attempts" and body["error"]["field"] == "email"
    )
    assert response.headers["Retry-After"] == "900"
    scene.clock.advance(600)
    status, body, response = await browser.call(
        "POST", "/api/auth/sign-in", {"email": "ana@alfa.example", "password": PASSWORD}
    )
    assert status == 429 and response.headers["Retry-After"] == "300"
    other = scene.browser()  # another agent is not locked out by Ana's attempts
    await scene.invited("beto@alfa.example")
    assert (await other.sign_in("beto@alfa.example"))["agent"]["name"] == "Beto"
    scene.clock.advance(301)
    assert (await browser.sign_in("ana@alfa.example"))["agent"]["name"] == "Ana"


async def test_a_session_ends_when_idle_and_at_its_absolute_end(scene: Scene) -> None:
    ana = await scene.invited("ana@alfa.example")
    scene.clock.advance(3000)
    assert (await ana.call("GET", "/api/auth/session"))[0] == 200  # used: idle time starts again
    scene.clock.advance(3000)
    assert (await ana.call("GET", "/api/auth/session"))[0] == 200
    scene.clock.advance(3601)
    status, body, _ = await ana.call("GET", "/api/auth/session")
    assert status == 401 and body["error"] == {
        "code": "unauthenticated",
        "message": "the session ended; sign in again",
        "field": "cookie",
    }
    await ana.sign_in("ana@alfa.example")
    for _ in range(9):  # in use all along, but no longer than 8 hours
        scene.clock.advance(3500)
        status, _, _ = await ana.call("GET", "/api/auth/session")
    assert status == 401


async def test_signing_out_ends_the_session_and_closes_its_socket_and_everywhere_ends_them_all(
    scene: Scene,
) -> None:
    office = await scene.invited("ana@alfa.example")
    phone = scene.browser()
    await phone.sign_in("ana@alfa.example")
    socket = await phone.http.ws_connect(
        str(scene.engine.client.make_url("/ws/agent")), headers={"Origin": phone.origin}
    )
    await socket.send_json({"type": "ping"})
    assert (await socket.receive_json(timeout=5))["type"] == "pong"

    tokens = (
        await (await scene.engine.client.get("/api/admin/tokens", headers=scene.a.auth("admin"))).json()
    )["items"]
    sessions = [t for t in tokens if t["kind"] == "session" and t["status"] == "active"]
    assert len(sessions) == 2 and all(t["agent_email"] == "ana@alfa.example" for t in sessions)

    status, body, response = await office.call("POST", "/api/auth/sign-out")
    assert status == 200 and body == {"sessions_ended": 1}
    assert "centralita_session=" in response.headers["Set-Cookie"]
    assert (await office.call("GET", "/api/auth/session"))[0] == 401
    assert (await phone.call("GET", "/api/auth/session"))[0] == 200  # the other browser goes on

    await office.sign_in("ana@alfa.example")
    status, body, _ = await office.call("POST", "/api/auth/sign-out-everywhere")
    assert status == 200 and body == {"sessions_ended": 2}
    assert (await phone.call("GET", "/api/auth/session"))[0] == 401
    async with asyncio.timeout(3):
        closing = await socket.receive()
    assert (
        closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        and socket.close_code == TOKEN_REFUSED
    )
    # Ana's API token is not a session: it still works.
    response = await scene.engine.client.get("/api/conversations", headers=scene.a.auth("ana"))
    assert response.status == 200


async def test_an_agent_socket_from_another_site_is_refused(scene: Scene) -> None:
    ana = await scene.invited("ana@alfa.example")
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await ana.http.ws_connect(
            str(scene.engine.client.make_url("/ws/agent")), headers={"Origin": "https://evil.example"}
        )
    assert refused.value.status == 403


async def test_an_admin_invites_only_the_agents_of_their_own_workspace(scene: Scene) -> None:
    status, body = await scene.invite("ana@alfa.example", ws=scene.b)
    assert status == 404 and body["error"]["field"] == "email"
    response = await scene.engine.client.post(
        "/api/admin/invitations", json={"email": "ana@alfa.example"}, headers=scene.a.auth("carla")
    )
    assert response.status == 403  # a supervisor is not an admin
