// The example as a process, against the real service signing ES256 and EdDSA tokens.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { SignJWT, importPKCS8 } from 'jose';

import { loginAs, repoRoot, startService } from '../../../clients/testing/service.mjs';

const ENCRYPTION_KEY = 'MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=';
const keyFile = (name) => `${repoRoot}/tests/fixtures/keys/${name}`;
const stops = [];

after(async () => {
  for (const stop of stops.reverse()) await stop();
});

async function startExample(authUrl) {
  const child = spawn(process.execPath, [fileURLToPath(new URL('../server.mjs', import.meta.url))], {
    env: { PATH: process.env.PATH, WECHAT_AUTH_URL: authUrl, PORT: '0' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  stops.push(async () => {
    if (child.exitCode === null) {
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await gone;
    }
  });
  const lines = createInterface({ input: child.stdout });
  for await (const line of lines) {
    const match = /^listening on (\S+)$/.exec(line);
    if (match) return `http://${match[1]}`;
  }
  throw new Error('the example exited before listening');
}

async function whoami(exampleUrl, token) {
  const headers = token ? { authorization: `Bearer ${token}` } : {};
  return fetch(`${exampleUrl}/whoami`, { headers });
}

async function sign(keyName, alg, kid, claims) {
  const key = await importPKCS8(readFileSync(keyFile(keyName), 'utf8'), alg);
  return new SignJWT(claims).setProtectedHeader({ alg, kid, typ: 'JWT' }).sign(key);
}

for (const [alg, keyName, otherKeyName] of [
  ['ES256', 'es256-a.pem', 'es256-b.pem'],
  ['EdDSA', 'ed25519-a.pem', null],
]) {
  describe(`tokens signed ${alg}`, async () => {
    const service = await startService({
      JWT_ALGORITHM: alg,
      JWT_PRIVATE_KEY_FILE: keyFile(keyName),
      SESSION_KEY_ENCRYPTION_KEY: ENCRYPTION_KEY,
    });
    stops.push(service.stop);
    const example = await startExample(service.baseUrl);
    const login = await loginAs(service.baseUrl, `node${alg}`);
    const { keys } = await (await fetch(`${service.baseUrl}/.well-known/jwks.json`)).json();
    const kid = keys[0].kid;
    const now = Math.floor(Date.now() / 1000);
    const claims = (overrides = {}) => ({
      iss: 'wechat-auth',
      aud: 'wechat-miniprogram',
      sub: login.user.id,
      sid: 'forged-session',
      jti: 'forged',
      iat: now,
      exp: now + 600,
      ...overrides,
    });

    test('a token from the service passes and names its user', async () => {
      const res = await whoami(example, login.access_token);
      assert.equal(res.status, 200);
      assert.equal((await res.json()).user_id, login.user.id);
    });

    test('no token, or a token that is not one, is refused', async () => {
      assert.equal((await whoami(example)).status, 401);
      assert.equal((await whoami(example, 'not.a.token')).status, 401);
    });

    test("an expired token is refused even with the service's own signature", async () => {
      const expired = await sign(keyName, alg, kid, claims({ iat: now - 7200, exp: now - 3600 }));
      assert.equal((await whoami(example, expired)).status, 401);
    });

    test("a token for another audience is refused even with the service's own signature", async () => {
      const other = await sign(keyName, alg, kid, claims({ aud: 'someone-else' }));
      assert.equal((await whoami(example, other)).status, 401);
    });

    if (otherKeyName) {
      test("a token signed with another key under the service's kid is refused", async () => {
        const forged = await sign(otherKeyName, alg, kid, claims());
        assert.equal((await whoami(example, forged)).status, 401);
      });
    }

    test('a token whose payload was changed is refused', async () => {
      const [header, , signature] = login.access_token.split('.');
      const payload = Buffer.from(JSON.stringify(claims({ sub: 'someone-else' }))).toString('base64url');
      assert.equal((await whoami(example, `${header}.${payload}.${signature}`)).status, 401);
    });
  });
}
