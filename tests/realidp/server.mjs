// An independent OAuth 2.0 provider for tokenslo's real-provider test: panva's
// oidc-provider (an OpenID Certified implementation), configured like a SaaS tenant
// with one confidential machine client. Nothing here is tokenslo code; it only
// configures the library.
//
// Environment (all required; the test generates the secret and a free port):
//   REALIDP_PORT           loopback port to listen on
//   REALIDP_CLIENT_ID      the client_credentials client
//   REALIDP_CLIENT_SECRET  its secret (never printed)
// Optional:
//   REALIDP_ALG            ES256 (default) or RS256: the signing algorithm of every token
//
// Tokens: without a `resource` parameter the provider issues opaque access tokens
// (introspectable and revocable). With `resource=api://realidp` (RFC 8707) it issues
// RFC 9068 JWT access tokens signed ES256 (REALIDP_ALG), which oidc-provider refuses to introspect
// or revoke by design (see docs/prober.md, "what differed").
import { generateKeyPairSync, randomUUID } from 'node:crypto';

import Provider, { errors } from 'oidc-provider';

const RESOURCE = 'api://realidp';
const SCOPE = 'api.read';
const TTL = 300;

function required(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`realidp: ${name} must be set`);
    process.exit(2);
  }
  return value;
}

const port = Number(required('REALIDP_PORT'));
const clientId = required('REALIDP_CLIENT_ID');
const clientSecret = required('REALIDP_CLIENT_SECRET');
const ALG = process.env.REALIDP_ALG || 'ES256';
if (ALG !== 'ES256' && ALG !== 'RS256') {
  console.error(`realidp: REALIDP_ALG must be ES256 or RS256, got ${ALG}`);
  process.exit(2);
}
const issuer = `http://127.0.0.1:${port}`;

// A fresh signing key per run, so the test never depends on oidc-provider's dev keys.
const { privateKey } = ALG === 'ES256'
  ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
  : generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: randomUUID(), use: 'sig', alg: ALG };

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: clientId,
      client_secret: clientSecret,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic',
      scope: SCOPE,
      // oidc-provider validates client metadata against its keystore (ES256 only here).
      id_token_signed_response_alg: ALG,
    },
  ],
  jwks: { keys: [signingKey] },
  scopes: [SCOPE],
  ttl: { ClientCredentials: TTL },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: async (_ctx, _client, oneOf) => oneOf,
      useGrantedResource: async () => false,
      getResourceServerInfo: async (_ctx, resource) => {
        if (resource !== RESOURCE) throw new errors.InvalidTarget();
        return {
          scope: SCOPE,
          audience: RESOURCE,
          accessTokenTTL: TTL,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: ALG } },
        };
      },
    },
  },
});

const server = provider.listen(port, '127.0.0.1', () => {
  console.log(`realidp: listening on ${issuer}`);
});

function stop() {
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
