// A downstream Node service that trusts wechat-auth's access tokens without its secrets:
// each request's Bearer token is verified against the JWKS that wechat-auth publishes
// (ES256 or EdDSA, keys picked by `kid`).
//
//   WECHAT_AUTH_URL=http://127.0.0.1:8080 PORT=3000 node server.mjs
//   curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:3000/whoami
//
// GET /whoami answers {"user_id", "session_id"} for a valid token and 401 otherwise. It
// prints `listening on <host>:<port>` once it accepts connections (PORT=0 picks a port).
// Only wechat-auth knows about logouts: a token stays valid here until `exp`.

import { createServer } from 'node:http';

import { createRemoteJWKSet, jwtVerify } from 'jose';

const authUrl = (process.env.WECHAT_AUTH_URL ?? 'http://127.0.0.1:8080').replace(/\/+$/, '');

// Fetched on first use and cached for 10 minutes; a token naming an unknown kid fetches
// again, at most once per 30 seconds (so forged kids cannot hammer wechat-auth).
const jwks = createRemoteJWKSet(new URL(`${authUrl}/.well-known/jwks.json`));

export async function verify(token) {
  const { payload } = await jwtVerify(token, jwks, {
    issuer: process.env.JWT_ISSUER ?? 'wechat-auth',
    audience: process.env.JWT_AUDIENCE ?? 'wechat-miniprogram',
    algorithms: ['ES256', 'EdDSA'],
    requiredClaims: ['sub', 'exp'],
  });
  return payload; // payload.sub: the user id, payload.sid: the session
}

// Errors that say the token is bad, as opposed to wechat-auth being out of reach.
function refusesToken(error) {
  return /^ERR_(JWT|JWS|JOSE_ALG|JWKS_NO_MATCHING_KEY|JWKS_MULTIPLE_MATCHING_KEYS)/.test(error?.code ?? '');
}

function send(res, status, body, headers = {}) {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

const server = createServer(async (req, res) => {
  if (req.method !== 'GET' || new URL(req.url, 'http://localhost').pathname !== '/whoami') {
    return send(res, 404, { code: 'not_found' });
  }
  const unauthorized = () => send(res, 401, { code: 'unauthorized' }, { 'www-authenticate': 'Bearer' });
  const match = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '');
  if (!match) return unauthorized();
  try {
    const payload = await verify(match[1]);
    return send(res, 200, { user_id: payload.sub, session_id: payload.sid });
  } catch (error) {
    if (refusesToken(error)) {
      // The reason only, never the token.
      console.error(`token refused: ${error.code}`);
      return unauthorized();
    }
    console.error(`fetching the key set failed: ${error.message}`);
    return send(res, 503, { code: 'jwks_unavailable' });
  }
});

const host = process.env.HOST ?? '127.0.0.1';
server.listen(Number(process.env.PORT ?? 3000), host, () => {
  console.log(`listening on ${host}:${server.address().port}`);
});
