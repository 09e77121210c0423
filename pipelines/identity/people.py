"""A person as a directory or an identity provider describes them at sign-in (and again at each
refresh): the one shape both sources hand the rest of the service."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Source = Literal["ldap", "oidc"]


@dataclass(frozen=True)
class Person:
    person_id: str  # stable across sign-ins: "ldap:<DN, lower-cased>" or "oidc:<issuer's sub>"
    login: str  # what a refresh asks the source again: the LDAP username, the OIDC `sub`
    name: str  # for people to read: LDAP displayName (else cn, else the username); OIDC name / preferred_username
    groups: tuple[str, ...]  # sorted, unique: LDAP the groups' cn; OIDC the groups claim's values
    source: Source
