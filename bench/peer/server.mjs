// The peer of the load benchmark: panva's oidc-provider (OpenID Certified), configured as
// close to the provider as it allows, served on 127.0.0.1:$PORT by bench/run.py (pinned to one
// core with taskset). Code flow with PKCE S256, rotating refresh tokens, RS256 ID tokens, the
// built-in in-memory adapter, a confidential client (client_secret_basic) that may also use
// client_credentials, userinfo and introspection. People log in through oidc-provider's own
// development interactions (login and consent forms), which the benchmark drives to seed tokens.
import { generateKeyPairSync, randomBytes } from 'node:crypto';

import Provider from 'oidc-provider';

const port = Number(process.env.PORT || 3000);
const issuer = `http://127.0.0.1:${port}`;

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: 'bench-rs256', use: 'sig', alg: 'RS256' };

// Every login name is a person (the development login form takes any name and password).
async function findAccount(ctx, accountId) {
  return {
    accountId,
    async claims() {
      return {
        sub: accountId,
        given_name: 'Jeanne',
        family_name: 'Martin',
        gender: 'female',
        birthdate: '1985-05-12',
        email: `${accountId}@exemple.fr`,
        email_verified: true,
      };
    },
  };
}

const provider = new Provider(issuer, {
  clients: [{
    client_id: process.env.BENCH_CLIENT_ID,
    client_secret: process.env.BENCH_CLIENT_SECRET,
    redirect_uris: [process.env.BENCH_REDIRECT_URI],
    grant_types: ['authorization_code', 'refresh_token', 'client_credentials'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
    id_token_signed_response_alg: 'RS256',
  }],
  jwks: { keys: [signingKey] },
  findAccount,
  claims: {
    openid: ['sub'],
    profile: ['given_name', 'family_name', 'gender', 'birthdate'],
    email: ['email', 'email_verified'],
  },
  features: {
    devInteractions: { enabled: true },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    userinfo: { enabled: true },
  },
  pkce: { required: () => true },
  // The provider's policy: a refresh token with every code exchange, replaced on every use.
  issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
  rotateRefreshToken: true,
  // The provider's lifetimes (idp/config.py), seconds.
  ttl: {
    AccessToken: 600,
    AuthorizationCode: 60,
    ClientCredentials: 600,
    IdToken: 600,
    RefreshToken: 86400,
    Grant: 2592000,
    Interaction: 1800,
    Session: 43200,
  },
  cookies: { keys: [randomBytes(32).toString('base64url')] },
});

provider.listen(port, '127.0.0.1', () => {
  console.log(`oidc-provider listening on ${issuer}`);
});
