"""The console's sign-in: requests and answers of ``/api/auth/*`` and ``/api/admin/invitations``."""

from __future__ import annotations

from uuid import UUID

from pydantic import Field

from centralita.schemas.common import IsoDateTime, RequestBody, ResponseBody
from centralita.schemas.tokens import Duration, Role
from storage.signin import Account, InvitationIssued

__all__ = [
    "AcceptInvitation",
    "InvitationCreate",
    "IssuedInvitation",
    "SessionInfo",
    "SignInRequest",
    "SignedInAgent",
    "SignedOut",
]


class SignInRequest(RequestBody):
    email: str = Field(min_length=3, max_length=320)
    password: str = Field(min_length=1, max_length=200)
    workspace: str | None = Field(
        default=None,
        max_length=100,
        description="The workspace's slug; needed only when the email signs in to several.",
    )


class AcceptInvitation(RequestBody):
    invitation: str = Field(min_length=8, max_length=200, description="The secret of the invitation link.")
    password: str = Field(
        min_length=1, max_length=200, description="The password to sign in with from now on (10+ characters)."
    )


class InvitationCreate(RequestBody):
    email: str = Field(min_length=3, max_length=320, description="An agent of the workspace.")
    expires_in: Duration | None = Field(
        default=None, description="Default: CENTRALITA_INVITATION_LIFETIME_S (7 days)."
    )


class SignedInAgent(ResponseBody):
    id: UUID
    name: str
    email: str
    role: Role

    @classmethod
    def of(cls, account: Account) -> SignedInAgent:
        return cls(
            id=account.agent_id,
            name=account.name,
            email=account.email,
            role=account.role,  # type: ignore[arg-type]  # an agent row holds one of the three
        )


class SessionInfo(ResponseBody):
    """Who is signed in, until when, and the CSRF token the page sends with every change."""

    workspace: str = Field(description="The workspace's slug.")
    workspace_id: UUID
    role: Role
    agent: SignedInAgent | None = Field(description="null: a bearer token that names no agent.")
    kind: str = Field(description="session: the console's cookie; api: a bearer token.")
    csrf_token: str | None = Field(
        description="Send it as X-CSRF-Token with every POST, PUT, PATCH and DELETE (sessions only)."
    )
    expires_at: IsoDateTime | None = Field(description="The session's absolute end.")
    idle_timeout_s: float = Field(description="A session unused for this long ends.")


class SignedOut(ResponseBody):
    sessions_ended: int = Field(description="How many signed-in browsers were signed out.")


class IssuedInvitation(ResponseBody):
    """A one-time sign-in link: shown in this answer only."""

    id: UUID
    agent: SignedInAgent
    workspace: str
    url: str = Field(description="Open it to set a password and sign in; it works once.")
    expires_at: IsoDateTime

    @classmethod
    def of(cls, issued: InvitationIssued, base_url: str) -> IssuedInvitation:
        return cls(
            id=issued.id,
            agent=SignedInAgent.of(issued.account),
            workspace=issued.account.workspace,
            url=f"{base_url.rstrip('/')}/console/invitation#{issued.secret}",
            expires_at=issued.expires_at,
        )
