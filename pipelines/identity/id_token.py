"""Whether an OpenID Connect ID token holds, checked by the libraries: joserfc verifies the signature
against the provider's JWKS with only asymmetric algorithms allowed (so `alg: none`, or an HMAC keyed
with a public key, never passes); Authlib's `CodeIDToken` checks the claims (`iss`, `aud`, `azp`,
`exp`, `iat`, `nonce`, `at_hash`). What does not hold is SignInFailed saying which check failed."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from authlib.oidc.core import CodeIDToken
from joserfc import errors as jose
from joserfc import jwk, jwt
from joserfc.jws import JWSRegistry

from docassist.pipelines.errors import SignInFailed

LEEWAY_S = 60  # clock skew allowed between this server and the provider (exp, iat, nbf)
# Signed with a private key, checked with the published public one: the only kind of ID token taken
# (an HMAC's key would be the client secret, or a public key misused as one)
ASYMMETRIC_ALGS = (
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
    "ES256", "ES384", "ES512", "ES256K", "EdDSA", "Ed25519", "Ed448",
)  # fmt: skip
_NOT_HELD = "the provider's ID token does not hold: "
_SIGNATURE_FAILURES = (  # why a signature does not hold, for people (else: not a well-formed JWT)
    (jose.InvalidKeyIdError, "it is signed by a key the provider does not publish in its JWKS"),
    (jose.BadSignatureError, "its signature does not verify against the provider's published keys"),
    (jose.UnsupportedAlgorithmError, "its signing algorithm is refused ({exc.description}; accepted: {accepted})"),
)
# why a claim does not hold, for people; formatted with the token's claims and what was expected
_CLAIM_FAILURES = {
    "exp": "it has expired (is this server's clock right?)",
    "iss": "it was issued by {iss!r}, not by OIDC_ISSUER {issuer!r}",
    "aud": "it is meant for {aud!r}, not for this client ({client_id!r})",
    "azp": "it was issued to another client (azp {azp!r}, not {client_id!r})",
    "nonce": "its nonce is not this sign-in's (a replayed or mixed-up sign-in)",
    "iat": "it is not valid yet (iat in the future: is this server's clock right?)",
    "nbf": "it is not valid yet (nbf in the future: is this server's clock right?)",
    "at_hash": "it does not belong with the access token sent with it (at_hash)",
}


def verify_id_token(
    token: str,
    jwks: Mapping[str, Any],
    issuer: str,
    client_id: str,
    nonce: str | None,
    now: float | None = None,
    *,
    algorithms: Collection[str] = ASYMMETRIC_ALGS,
    access_token: str | None = None,
) -> dict[str, Any]:
    """The claims of an ID token that holds: signed by a key of `jwks` with one of `algorithms`
    (asymmetric ones only), issued by `issuer` for `client_id`, current at `now` (within
    `LEEWAY_S`), carrying `nonce` (None: not checked, as on a refresh) and, with `access_token`,
    that token's `at_hash`. Anything else: SignInFailed saying which check failed."""
    try:
        decoded = decode(token, key_set(jwks), algorithms)
    except (jose.JoseError, ValueError) as exc:
        raise refused_signature(exc, algorithms) from exc
    return check_claims(decoded, issuer, client_id, nonce, now, access_token)


def key_set(jwks: Mapping[str, Any]) -> jwk.KeySet:
    """The JWKS's signing keys; an encryption key, or one joserfc cannot read, could not have signed
    a token that passes, so it is left out."""
    keys: list[jwk.Key] = []
    for data in jwks.get("keys") or []:
        if isinstance(data, dict) and data.get("use", "sig") == "sig":
            try:
                keys.append(jwk.import_key(data))
            except (jose.JoseError, ValueError, TypeError):
                continue
    return jwk.KeySet(keys)


def decode(token: str, keys: jwk.KeySet, algorithms: Collection[str]) -> jwt.Token:
    """The token with its signature verified (joserfc's errors otherwise)."""
    allowed = [alg for alg in algorithms if alg in ASYMMETRIC_ALGS]
    # header fields beyond the registered ones pass (providers add their own); `crit` is still enforced
    return jwt.decode(token, keys, registry=JWSRegistry(algorithms=allowed, strict_check_header=False))


def refused_signature(exc: Exception, algorithms: Collection[str]) -> SignInFailed:
    accepted = ", ".join(alg for alg in algorithms if alg in ASYMMETRIC_ALGS)
    why = next(
        (why for kind, why in _SIGNATURE_FAILURES if isinstance(exc, kind)), "it is not a well-formed JWT ({exc})"
    )
    return SignInFailed(_NOT_HELD + why.format(exc=exc, accepted=accepted))


def check_claims(
    decoded: jwt.Token, issuer: str, client_id: str, nonce: str | None, now: float | None, access_token: str | None
) -> dict[str, Any]:
    """Authlib's checks of an ID token of the code flow; SignInFailed naming the one that failed."""
    options = {"iss": {"essential": True, "value": issuer}, "aud": {"essential": True, "value": client_id}}
    params = {"nonce": nonce, "client_id": client_id, "access_token": access_token}
    claims = CodeIDToken(decoded.claims, decoded.header, options=options, params=params)
    try:
        claims.validate(now=None if now is None else int(now), leeway=LEEWAY_S)
    except jose.ClaimError as exc:
        if isinstance(exc, jose.MissingClaimError):
            raise SignInFailed(_NOT_HELD + f"it lacks the {exc.claim} claim") from exc
        values = {k: decoded.claims.get(k) for k in ("iss", "aud", "azp")}
        values |= {"issuer": issuer, "client_id": client_id, "claim": exc.claim}
        why = _CLAIM_FAILURES.get(exc.claim, "its {claim} claim does not hold").format_map(values)
        raise SignInFailed(_NOT_HELD + why) from exc
    except jose.JoseError as exc:
        raise SignInFailed(_NOT_HELD + str(exc)) from exc
    return dict(claims)
