"""The console's sign-in: email and password, one-time invitation links, signing out.

A successful sign-in issues a session token (``api_token`` of kind ``session``, the agent's role
and agent) that lives ``session_absolute_s`` and ends sooner once unused for ``session_idle_s``;
the HTTP side puts it in a cookie.  Revoking it (``sign_out``, ``sign_out_everywhere``, the admin
token API, ``centralita token revoke``) refuses it from the next request on and closes the
sockets it opened within ``token_recheck_s``.

Refused sign-ins are counted per email and per client address (hashed) within
``sign_in_window_s``: beyond ``sign_in_max_failures`` for an email — or ten times that from one
address — the answer is ``TooManyAttempts`` (429) until the oldest failure leaves the window,
whether or not the password is right.  A right password clears the email's count.

Each outcome is in the audit trail, in the transaction that makes it: ``sign_in.succeeded`` (as
the agent; the session issued is ``session.issued``), ``sign_in.refused`` for a wrong email or
password (the email only as the rate limit's SHA-256, ``email_sha256``; the agent and its
workspace when the email is an agent's, else no workspace: only ``centralita audit`` without
``--workspace`` shows those), ``invitation.issued`` and ``invitation.used``, and every session
revoked by a sign-out (``session.revoked``, ``reason`` ``sign_out`` or ``sign_out_everywhere``).
A sign-in refused by the rate limit is not recorded: a flood of guesses costs no writes.

Nothing here imports aiohttp: ``centralita.web.api.signin`` and the CLI call it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from centralita.passwords import check_strength, hash_password, verify_password
from centralita.runtime import Runtime
from core.audit import AccessAction
from core.errors import AuthenticationRequired, InvalidInput, NotFound, TooManyAttempts
from core.ids import AgentId
from core.logging import get_logger
from storage.audit import record
from storage.database import Database
from storage.signin import Account, InvitationIssued, InvitationRefusal, SignInStore, rate_key
from storage.tokens import TokenStore

__all__ = ["SignedIn", "accept_invitation", "invite", "sign_in", "sign_out_everywhere"]

log = get_logger("centralita.signin")

_WRONG = "wrong email or password"


@dataclass(frozen=True, slots=True)
class SignedIn:
    """A new session: its secret (for the cookie, never stored), who, and until when."""

    token: str
    token_id: str
    account: Account
    expires_at: datetime


async def _open_session(
    runtime: Runtime, store: TokenStore, account: Account, device: str, now: datetime
) -> SignedIn:
    expires_at = now + timedelta(seconds=runtime.settings.session_absolute_s)
    issued = await store.create(
        account.workspace_id,
        account.role,
        account.agent_id,
        f"console: {device}"[:200],
        now,
        expires_at=expires_at,
        kind="session",
        actor=f"agent:{account.agent_id}",
    )
    return SignedIn(issued.token, str(issued.record.id), account, expires_at)


async def _signed_in_audit(session: AsyncSession, signed: SignedIn, how: str, now: datetime) -> None:
    await record(
        session,
        AccessAction.SIGNED_IN,
        workspace_id=signed.account.workspace_id,
        at=now,
        actor=f"agent:{signed.account.agent_id}",
        subject_type="agent",
        subject_id=str(signed.account.agent_id),
        agent_id=signed.account.agent_id,
        details={"how": how, "session": signed.token_id},
    )


def _retry_after(oldest: datetime | None, window: timedelta, now: datetime) -> int:
    if oldest is None:
        return 1
    return max(1, math.ceil((oldest + window - now).total_seconds()))


async def sign_in(
    runtime: Runtime,
    email: str,
    password: str,
    *,
    workspace: str | None,
    client: str,
    device: str,
) -> SignedIn:
    """A session for the agent with this email and password, or ``AuthenticationRequired``
    (``field: "password"``, the same answer for an unknown email), ``TooManyAttempts``, or
    ``InvalidInput`` naming ``workspace`` when the email and password fit several workspaces."""
    settings = runtime.settings
    now = runtime.clock()
    window = timedelta(seconds=settings.sign_in_window_s)
    email_key, client_key = rate_key("email", email), rate_key("client", client)
    database: Database = runtime.database
    async with database.session() as session:
        store = SignInStore(session)
        counts = await store.failures([email_key, client_key], now - window)
        over = None
        if counts.get(email_key, 0) >= settings.sign_in_max_failures:
            over = email_key
        elif counts.get(client_key, 0) >= 10 * settings.sign_in_max_failures:
            over = client_key
        if over is not None:
            oldest = await store.oldest_failure(over, now - window)
            log.warning("sign_in.rate_limited", key=over[:12])
            raise TooManyAttempts(
                "too many wrong sign-ins; wait before trying again",
                retry_after_s=_retry_after(oldest, window, now),
                field="email",
            )
        accounts = await store.accounts(email, workspace)
    matched = [a for a in accounts if a.active and await verify_password(a.password_hash, password)]
    if not accounts:
        await verify_password(None, password)  # the same time as a wrong password
    if not matched:
        async with database.transaction() as session:
            await SignInStore(session).record_failure(
                [email_key, client_key], now, forget_before=now - window
            )
            refusals: list[Account | None] = list(accounts) or [None]
            for refused in refusals:
                await record(
                    session,
                    AccessAction.SIGN_IN_REFUSED,
                    workspace_id=refused.workspace_id if refused else None,
                    at=now,
                    actor="anonymous",
                    subject_type="agent" if refused else "email",
                    subject_id=str(refused.agent_id) if refused else email_key,
                    agent_id=refused.agent_id if refused else None,
                    details={
                        "email_sha256": email_key,
                        "reason": "inactive" if refused and not refused.active else "wrong_password",
                    },
                )
        log.info("sign_in.refused", accounts=len(accounts))
        raise AuthenticationRequired(_WRONG, field="password")
    if len(matched) > 1:
        raise InvalidInput(
            "this email signs in to several workspaces: choose one",
            field="workspace",
            details={"workspaces": [a.workspace for a in matched]},
        )
    (account,) = matched
    async with database.transaction() as session:
        await SignInStore(session).clear_failures(email_key)
        signed = await _open_session(runtime, TokenStore(session), account, device, now)
        await _signed_in_audit(session, signed, "password", now)
    log.info(
        "sign_in.ok",
        agent_id=str(account.agent_id),
        workspace_id=str(account.workspace_id),
        token_id=signed.token_id,
    )
    return signed


async def accept_invitation(runtime: Runtime, secret: str, password: str, *, device: str) -> SignedIn:
    """Use a one-time invitation: set the agent's password and sign them in — all or nothing."""
    check_strength(password)
    password_hash = await hash_password(password)
    now = runtime.clock()
    async with runtime.database.transaction() as session:
        redeemed = await SignInStore(session).redeem(secret, now)
        if isinstance(redeemed, InvitationRefusal):
            raise AuthenticationRequired(redeemed.message, field="invitation")
        if not redeemed.active:
            raise AuthenticationRequired("this agent is no longer active", field="invitation")
        await SignInStore(session).set_password(redeemed.agent_id, password_hash, now)
        signed = await _open_session(runtime, TokenStore(session), redeemed, device, now)
        await record(
            session,
            AccessAction.INVITATION_USED,
            workspace_id=redeemed.workspace_id,
            at=now,
            actor=f"agent:{redeemed.agent_id}",
            subject_type="agent",
            subject_id=str(redeemed.agent_id),
            agent_id=redeemed.agent_id,
            details={},
        )
        await _signed_in_audit(session, signed, "invitation", now)
    log.info(
        "sign_in.invitation_used",
        agent_id=str(redeemed.agent_id),
        workspace_id=str(redeemed.workspace_id),
        token_id=signed.token_id,
    )
    return signed


async def invite(
    database: Database,
    *,
    workspace: str,
    email: str,
    created_by: str,
    now: datetime,
    lifetime: timedelta,
) -> InvitationIssued:
    """A one-time sign-in link for the agent of ``workspace`` with ``email`` (``NotFound`` naming
    ``email`` otherwise); earlier unused links of the agent keep working until they expire."""
    async with database.transaction() as session:
        store = SignInStore(session)
        found = await store.accounts(email, workspace)
        if not found:
            raise NotFound(f"no agent with that email in workspace {workspace!r}", field="email")
        if not found[0].active:
            raise InvalidInput("the agent is not active", field="email")
        issued = await store.invite(found[0], created_by, now, now + lifetime)
        await record(
            session,
            AccessAction.INVITATION_ISSUED,
            workspace_id=issued.account.workspace_id,
            at=now,
            actor=created_by,
            subject_type="agent",
            subject_id=str(issued.account.agent_id),
            agent_id=issued.account.agent_id,
            details={"invitation_id": issued.id, "expires_at": issued.expires_at},
        )
    log.info(
        "invitation.created",
        agent_id=str(issued.account.agent_id),
        workspace_id=str(issued.account.workspace_id),
        invitation_id=str(issued.id),
    )
    return issued


async def sign_out_everywhere(
    runtime: Runtime, agent_id: AgentId, *, actor: str | None = None
) -> tuple[str, ...]:
    """Revoke every session of the agent (the API tokens stay): the ids revoked.  ``actor``: who
    asked (the agent itself by default)."""
    async with runtime.database.transaction() as session:
        ended = await TokenStore(session).revoke_sessions(
            agent_id, runtime.clock(), actor=actor or f"agent:{agent_id}"
        )
    log.info("sign_out.everywhere", agent_id=str(agent_id), sessions=len(ended))
    return ended
