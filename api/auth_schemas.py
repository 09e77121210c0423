"""The shapes of the sign-in, token and audit routes."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from docassist.pipelines.identity.rules import Role

USERNAME_CHARS = 256
PASSWORD_CHARS = 1024


class LoginRequest(BaseModel):
    username: str = Field(min_length=1, max_length=USERNAME_CHARS)
    password: str = Field(min_length=1, max_length=PASSWORD_CHARS)


class UserOut(BaseModel):
    id: str
    name: str
    groups: list[str]


class SpaceRole(BaseModel):
    space_id: str
    role: Role


class Me(BaseModel):
    """Who the caller is and what they reach."""

    user: UserOut | None = Field(description="the signed-in person; null for an API key or an open service")
    via: Literal["session", "token", "key", "open"]
    spaces: list[SpaceRole] = Field(description="the spaces the caller reaches, with their role in each")
    every_space_role: Role | None = Field(description="a role in every space, spaces made later included")
    no_groups: bool = Field(
        default=False, description="signed in, but the directory or provider named no group: no space is open"
    )
    expires_at: float | None = Field(default=None, description="when the session ends at the latest (unix seconds)")


class AuthConfig(BaseModel):
    ldap: bool
    oidc: bool
    oidc_name: str | None
    keys: bool


class TokenRequest(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    expires_in_days: int = Field(default=90, ge=1, le=365)


class TokenOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)  # read from the pipelines' `TokenInfo`

    token_id: str
    name: str
    created_at: float
    expires_at: float
    last_used_at: float | None = None


class NewToken(TokenOut):
    token: str = Field(description="the token itself: shown this once, kept only as a hash")


class TokenList(BaseModel):
    tokens: list[TokenOut]


class AuditEntryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)  # read from the pipelines' `AuditEntry`

    at: float
    action: str
    user_id: str | None
    user_name: str | None
    key_id: str | None
    space_id: str | None
    doc_id: str | None
    conversation_id: str | None
    route: str | None
    client: str | None
    request_id: str | None
    detail: str | None


class AuditList(BaseModel):
    entries: list[AuditEntryOut]
    next_cursor: str | None
