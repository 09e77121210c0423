"""What sign-in reads at start: which sources are on (LDAP, OpenID Connect, either, both or
neither), `ACCESS_RULES`, and how long sessions, refreshes and the audit trail last. A start with
a source on and no rules is refused, as is one with rules that cannot be read."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import Field

from docassist.pipelines.environment import ConfigError, FromEnvironment
from docassist.pipelines.identity.ldap_directory import LdapSettings
from docassist.pipelines.identity.oidc import OidcSettings
from docassist.pipelines.identity.rules import AccessRules, RulesConfigError, parse_access_rules


class IdentityLimits(FromEnvironment):
    access_rules: str = Field(default="", validation_alias="ACCESS_RULES")
    # an open session or token re-reads its person's groups from the source at least this often
    auth_refresh_s: float = Field(default=300, gt=0, validation_alias="AUTH_REFRESH_S")
    session_idle_s: float = Field(default=8 * 3600, gt=0, validation_alias="SESSION_IDLE_S")
    session_max_s: float = Field(default=7 * 86400, gt=0, validation_alias="SESSION_MAX_S")
    audit_retention_days: int = Field(default=365, ge=1, validation_alias="AUDIT_RETENTION_DAYS")


@dataclass(frozen=True)
class IdentityConfig:
    ldap: LdapSettings
    oidc: OidcSettings
    limits: IdentityLimits
    rules: AccessRules

    @property
    def sign_in(self) -> bool:
        """People sign in (LDAP, OpenID Connect or both); otherwise API keys alone say who calls."""
        return self.ldap.configured or self.oidc.configured

    @property
    def secure_cookie(self) -> bool:
        return (self.oidc.public_url or "").lower().startswith("https://")

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> IdentityConfig:
        """`ConfigError` naming the variable when something cannot be read without guessing."""
        ldap, oidc, limits = LdapSettings.from_env(env), OidcSettings.from_env(env), IdentityLimits.from_env(env)
        try:
            rules = parse_access_rules(limits.access_rules)
        except RulesConfigError as exc:
            raise ConfigError("environment", "ACCESS_RULES", str(exc)) from exc
        config = cls(ldap, oidc, limits, rules)
        if config.sign_in and not rules:
            raise ConfigError(
                "environment",
                "ACCESS_RULES",
                "sign-in is on (LDAP_URL or OIDC_ISSUER is set) but ACCESS_RULES names no group, so nobody could "
                "reach any space; write GROUP:SPACES:ROLE rules, e.g. ACCESS_RULES='staff:*:reader,editors:*:editor'",
            )
        return config
