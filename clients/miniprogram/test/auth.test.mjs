// The library inside a stand-in wx runtime, against the real service in sandbox mode.

import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { after, before, describe, test } from 'node:test';

import { sleep, startService } from '../../testing/service.mjs';
import { createWx } from '../../testing/wx-shim.mjs';

const { createAuth, AuthError } = createRequire(import.meta.url)('../index.js');

// Short-lived access tokens so that tests can watch them expire.
const TTL_SECS = 5;
let service;

before(async () => {
  service = await startService({ ACCESS_TOKEN_TTL_SECS: String(TTL_SECS) });
});
after(async () => {
  await service?.stop();
});

let names = 0;
function setup() {
  names += 1;
  const wx = createWx({ user: `user${names}x${process.pid}` });
  const auth = createAuth({ baseUrl: service.baseUrl, wx });
  return { wx, auth };
}

async function me(auth) {
  const res = await auth.request({ url: '/api/v1/me' });
  assert.equal(res.statusCode, 200, JSON.stringify(res.data));
  return res.data;
}

async function untilExpired() {
  // Whole seconds: a token issued at t lives until floor(t) + TTL.
  await sleep((TTL_SECS + 1) * 1000);
}

describe('login', () => {
  test('wx.login and our login: a new user, its session kept in wx storage', async () => {
    const { wx, auth } = setup();
    assert.equal(auth.user, null);
    const result = await auth.login();
    assert.equal(result.new_user, true);
    assert.equal(result.token_type, 'Bearer');
    assert.ok(result.refresh_token);
    assert.equal(auth.user.id, result.user.id);
    assert.equal(wx.getStorageSync('wechat-auth').access_token, result.access_token);
    assert.equal((await me(auth)).id, result.user.id);

    const again = await auth.login();
    assert.equal(again.new_user, false);
    assert.equal(again.user.id, result.user.id);
    assert.equal(wx.logins, 2);
  });

  test('a request with no session logs in first', async () => {
    const { wx, auth } = setup();
    const user = await me(auth);
    assert.equal(user.id, auth.user.id);
    assert.equal(wx.logins, 1);
  });

  test('another storage key keeps another session', async () => {
    const { wx } = setup();
    const auth = createAuth({ baseUrl: service.baseUrl, wx, storageKey: 'mine' });
    await auth.login();
    assert.ok(wx.getStorageSync('mine').refresh_token);
    assert.equal(wx.getStorageSync('wechat-auth'), '');
  });
});

describe('refresh', () => {
  test('20 concurrent requests with an expired access token make exactly one refresh', async () => {
    const { wx, auth } = setup();
    const { user } = await auth.login();
    await untilExpired();
    const answers = await Promise.all(Array.from({ length: 20 }, () => auth.request({ url: '/api/v1/me' })));
    assert.deepEqual(
      answers.map((res) => res.statusCode),
      Array(20).fill(200)
    );
    assert.ok(answers.every((res) => res.data.id === user.id));
    assert.equal(wx.requestsTo('/api/v1/auth/refresh'), 1);
    assert.equal(wx.logins, 1);
  });

  test('with a device clock that says the token is fresh, the 401s share one refresh too', async () => {
    const { wx, auth } = setup();
    await auth.login();
    await untilExpired();
    const session = wx.getStorageSync('wechat-auth');
    wx.setStorageSync('wechat-auth', { ...session, expires_at: Date.now() + 3600_000 });
    const answers = await Promise.all(Array.from({ length: 20 }, () => auth.request({ url: '/api/v1/me' })));
    assert.deepEqual(
      answers.map((res) => res.statusCode),
      Array(20).fill(200)
    );
    assert.equal(wx.requestsTo('/api/v1/me'), 40, 'each request was sent, refused, and sent again');
    assert.equal(wx.requestsTo('/api/v1/auth/refresh'), 1);
    assert.equal(wx.logins, 1);
  });

  test('a session revoked elsewhere leads to a new wx.login, and the request succeeds', async () => {
    const { wx, auth } = setup();
    const { user } = await auth.login();
    // Another instance holding the same tokens logs out: the session ends on the service.
    const other = createWx({ user: wx.user });
    other.setStorageSync('wechat-auth', wx.getStorageSync('wechat-auth'));
    await createAuth({ baseUrl: service.baseUrl, wx: other }).logout();

    const seen = [];
    auth.onAuthStateChange((event) => seen.push(event));
    assert.equal((await me(auth)).id, user.id);
    assert.equal(wx.logins, 2);
    assert.equal(wx.requestsTo('/api/v1/auth/refresh'), 1);
    assert.deepEqual(seen, ['SIGNED_OUT', 'SIGNED_IN']);
  });

  test('a reused refresh token ends the session; the library logs in again', async () => {
    const { wx, auth } = setup();
    const first = await auth.login();
    await auth.refresh();
    // Someone presents the retired refresh token: the service revokes the whole session.
    const reuse = await fetch(`${service.baseUrl}/api/v1/auth/refresh`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ refresh_token: first.refresh_token }),
    });
    assert.equal(reuse.status, 401);
    assert.equal((await me(auth)).id, first.user.id);
    assert.equal(wx.logins, 2);
  });

  test('getAccessToken gives a token that works', async () => {
    const { auth } = setup();
    const token = await auth.getAccessToken();
    const res = await fetch(`${service.baseUrl}/api/v1/me`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(res.status, 200);
  });
});

describe('phone number and profile', () => {
  test("getPhoneNumber's code gives the user a phone", async () => {
    const { wx, auth } = setup();
    await auth.login();
    const phone = await auth.phoneNumber({ detail: { code: `phone-${wx.user}`, errMsg: 'getPhoneNumber:ok' } });
    assert.ok(phone.phone_number);
    assert.equal(typeof phone.country_code, 'string');
    assert.equal(auth.user.phone_number, phone.phone_number);
    assert.equal((await me(auth)).phone_number, phone.phone_number);
  });

  test('an older base library: encryptedData and iv', async () => {
    const { auth } = setup();
    const { user } = await auth.login();
    const sealed = await sandboxSeal(user.openid, {
      phoneNumber: '13800138000',
      purePhoneNumber: '13800138000',
      countryCode: '86',
    });
    const phone = await auth.phoneNumber({ detail: { encryptedData: sealed.encrypted_data, iv: sealed.iv } });
    assert.equal(phone.phone_number, '13800138000');
    assert.equal((await me(auth)).phone_number, '13800138000');
  });

  test('a declined popup resolves null and sends nothing', async () => {
    const { wx, auth } = setup();
    await auth.login();
    const before = wx.requests.length;
    assert.equal(await auth.phoneNumber({ detail: { errMsg: 'getPhoneNumber:fail user deny' } }), null);
    assert.equal(wx.requests.length, before);
  });

  test("wx.getUserProfile's encrypted profile is saved on the user", async () => {
    const { auth } = setup();
    const { user } = await auth.login();
    const sealed = await sandboxSeal(user.openid, { nickName: 'Alice', avatarUrl: 'https://example.com/a.png' });
    const profile = await auth.userInfo({ encryptedData: sealed.encrypted_data, iv: sealed.iv });
    assert.equal(profile.nickname, 'Alice');
    assert.equal(auth.user.nickname, 'Alice');
    assert.equal((await me(auth)).avatar_url, 'https://example.com/a.png');
  });
});

describe('logout', () => {
  test('ends the session on the service and forgets it here', async () => {
    const { wx, auth } = setup();
    const { access_token } = await auth.login();
    await auth.logout();
    assert.equal(auth.user, null);
    assert.equal(wx.getStorageSync('wechat-auth'), '');
    const res = await fetch(`${service.baseUrl}/api/v1/me`, { headers: { authorization: `Bearer ${access_token}` } });
    assert.equal(res.status, 401);
    await auth.logout(); // nothing to end: no error
  });
});

describe('errors', () => {
  test("WeChat's high-risk user is AuthError user_blocked with the problem's status and detail", async () => {
    const { wx, auth } = setup();
    wx.nextCodes.push('sandbox-blocked');
    const error = await auth.login().then(
      () => assert.fail('login succeeded'),
      (e) => e
    );
    assert.ok(error instanceof AuthError);
    assert.ok(error instanceof Error);
    assert.equal(error.code, 'user_blocked');
    assert.equal(error.status, 403);
    assert.equal(typeof error.detail, 'string');
    assert.equal(error.body.code, 'user_blocked');
    assert.equal(auth.user, null);
  });

  test('a request whose login fails rejects with the login error', async () => {
    const { wx, auth } = setup();
    wx.nextCodes.push('sandbox-invalid');
    await assert.rejects(auth.request({ url: '/api/v1/me' }), { name: 'AuthError', code: 'invalid_code', status: 400 });
  });

  test('other answers come back as they are, like wx.request', async () => {
    const { auth } = setup();
    const res = await auth.request({ url: '/api/v1/no-such-path' });
    assert.equal(res.statusCode, 404);
    assert.equal(res.data.code, 'not_found');
  });

  test('no answer at all is AuthError network_error with status 0', async () => {
    const wx = createWx();
    const auth = createAuth({ baseUrl: 'http://127.0.0.1:9', wx });
    await assert.rejects(auth.login(), { code: 'network_error', status: 0 });
  });

  test('a computer sign-in id that is not one is refused before any request', async () => {
    const { wx, auth } = setup();
    await assert.rejects(auth.qrLogin.scan('../../me'), { code: 'invalid_request' });
    assert.equal(wx.requests.length, 0);
  });
});

async function sandboxSeal(openid, payload) {
  const res = await fetch(`${service.baseUrl}/sandbox/encrypt`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ openid, payload }),
  });
  assert.equal(res.status, 200);
  return res.json();
}
