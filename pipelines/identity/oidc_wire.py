"""What docassist reads of an OpenID provider's answers: its discovery document, and its token
endpoint's tokens or refusal (`oidc.py` asks)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Provider:
    """What docassist uses of the discovery document."""

    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None
    algorithms: tuple[str, ...]  # the asymmetric ID token signing algorithms it advertises
    post_secret: bool  # client_secret_post: the provider does not offer client_secret_basic
    scopes: frozenset[str] = frozenset()  # scopes_supported


@dataclass(frozen=True)
class Tokens:
    """The token endpoint's answer."""

    access_token: str | None
    id_token: str | None
    refresh_token: str | None
    expires_in: float | None


@dataclass(frozen=True)
class Refusal:
    """The token endpoint's OAuth error (RFC 6749 §5.2)."""

    error: str
    description: str
