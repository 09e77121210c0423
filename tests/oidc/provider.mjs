// A real OpenID Connect provider for docassist's sign-in tests: the certified `oidc-provider`
// package, configured as a company's provider would be for docassist. Started by
// tests/identity_provider.py; everything it needs comes from the environment:
//
//   OIDC_TEST_PORT           the port on 127.0.0.1; the issuer is http://127.0.0.1:<port>
//   OIDC_TEST_CLIENT_ID      the one confidential client (client_secret_basic or _post)
//   OIDC_TEST_CLIENT_SECRET
//   OIDC_TEST_REDIRECT_URIS  the client's redirect URIs, separated by spaces
//   OIDC_TEST_ACCOUNTS       a JSON file: { "<sub>": { "name", "email", "groups"?, "groups_in_id_token"?,
//                            "disabled"? } }, read again at every lookup, so a test changes a person's
//                            groups, disables or deletes them while the provider runs
//
// Sign-in is oidc-provider's own development form (devInteractions): any login whose account is in
// the file signs in as that account, whatever the password; then the consent form. Each start signs
// with a new RSA key (a new `kid`): a restart on the same port is a key rotation.

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';

import Provider from 'oidc-provider';

const env = (name) => {
  const value = process.env[name];
  if (!value) {
    console.error(`provider.mjs: ${name} is not set`);
    process.exit(2);
  }
  return value;
};

const port = Number(process.argv[2] || env('OIDC_TEST_PORT'));
const issuer = `http://127.0.0.1:${port}`;
const accountsFile = env('OIDC_TEST_ACCOUNTS');

function readAccount(sub) {
  let accounts;
  try {
    accounts = JSON.parse(readFileSync(accountsFile, 'utf8'));
  } catch {
    return undefined;
  }
  const account = Object.hasOwn(accounts, sub) ? accounts[sub] : undefined;
  return account && !account.disabled ? account : undefined;
}

// undefined for an account deleted or disabled since: the provider then refuses its refresh
// token (invalid_grant) and its access token at userinfo (invalid_token)
async function findAccount(ctx, sub) {
  if (!readAccount(sub)) return undefined;
  return {
    accountId: sub,
    // `use` is "id_token" or "userinfo"; the provider keeps what the granted scopes allow
    async claims(use) {
      const account = readAccount(sub) ?? {};
      const claims = {
        sub,
        name: account.name,
        preferred_username: sub,
        email: account.email,
        email_verified: account.email !== undefined,
      };
      // groups: absent when the account has none; in the ID token unless the account says
      // groups_in_id_token: false (then only userinfo has them, as some providers do)
      if (Array.isArray(account.groups) && (use === 'userinfo' || account.groups_in_id_token !== false)) {
        claims.groups = account.groups;
      }
      return claims;
    },
  };
}

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: randomBytes(8).toString('hex'), use: 'sig', alg: 'RS256' };

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: env('OIDC_TEST_CLIENT_ID'),
      client_secret: env('OIDC_TEST_CLIENT_SECRET'),
      redirect_uris: env('OIDC_TEST_REDIRECT_URIS').split(/\s+/).filter(Boolean),
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    },
  ],
  scopes: ['openid', 'offline_access', 'profile', 'email', 'groups'],
  claims: {
    openid: ['sub'],
    profile: ['name', 'preferred_username'],
    email: ['email', 'email_verified'],
    groups: ['groups'],
  },
  // the claims of the granted scopes in the ID token too, not only at userinfo
  conformIdTokenClaims: false,
  pkce: { required: () => true },
  // a refresh token for this client at every sign-in, offline_access asked for or not
  issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
  features: { devInteractions: { enabled: true } },
  findAccount,
  jwks: { keys: [signingKey] },
  cookies: { keys: [randomBytes(16).toString('hex')] },
  // seconds; set, so the provider does not warn about its defaults at every first use
  ttl: {
    AccessToken: 600,
    AuthorizationCode: 60,
    Grant: 86400,
    IdToken: 600,
    Interaction: 600,
    RefreshToken: 86400,
    Session: 86400,
  },
});

const server = provider.listen(port, '127.0.0.1', () => {
  console.log(`oidc-provider listening on ${issuer}`);
});
const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
