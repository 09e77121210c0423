"""People: who signs in (an LDAP / Active Directory directory, an OpenID Connect provider), what
their groups give them (`ACCESS_RULES`), their sessions and personal tokens, and the audit trail of
what they did. Nothing here knows about HTTP: `api/` turns a cookie or a header into a caller."""
