// The library in Node with the page's globals injected (storage, location, history),
// against the real service in sandbox mode.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';

import { AuthError, createAuth, readAuthParams, stripAuthParams } from '../index.js';
import { loginAs, sleep, startService } from '../../testing/service.mjs';

const TTL_SECS = 5;
const OA_APPID = 'wxclienttestoa0001';
// The pages the tests pretend to be; the service lets the redirect flow come back there.
const SITE = 'https://app.example.com';
let service;

before(async () => {
  service = await startService({
    ACCESS_TOKEN_TTL_SECS: String(TTL_SECS),
    WECHAT_OA_APPID: OA_APPID,
    WECHAT_OA_SECRET: 'client-test-oa-secret',
    WEB_RETURN_URLS: `${SITE}/`,
  });
});
after(async () => {
  await service?.stop();
});

class MemoryStorage {
  #items = new Map();
  getItem(key) {
    return this.#items.has(key) ? this.#items.get(key) : null;
  }
  setItem(key, value) {
    this.#items.set(key, String(value));
  }
  removeItem(key) {
    this.#items.delete(key);
  }
}

/** A page at `href`: its storage, address bar and history, and the requests it made. */
function page(href = `${SITE}/account?tab=orders#top`, tab = {}) {
  const location = {
    href,
    assigned: [],
    assign(url) {
      this.assigned.push(url);
    },
  };
  const history = {
    state: { from: 'app' },
    replaced: [],
    replaceState(state, _title, url) {
      this.replaced.push({ state, url });
      location.href = url;
    },
  };
  const requests = [];
  const fetchCounting = (input, init) => {
    const request = new Request(input, init);
    requests.push({ method: request.method, path: new URL(request.url).pathname, body: init?.body });
    return fetch(request);
  };
  const storage = tab.storage ?? new MemoryStorage();
  const flowStorage = new MemoryStorage();
  const auth = createAuth({
    baseUrl: service.baseUrl,
    storage,
    flowStorage,
    location,
    history,
    fetch: fetchCounting,
    locks: tab.locks,
  });
  const requestsTo = (path) => requests.filter((r) => r.path === path).length;
  return { auth, storage, flowStorage, location, history, requests, requestsTo };
}

let names = 0;
function name() {
  names += 1;
  return `web${names}x${process.pid}`;
}

async function signedInPage() {
  const p = page();
  const who = name();
  const login = await loginAs(service.baseUrl, who);
  p.auth.setSession(login);
  return { ...p, login, who };
}

/** The Web Locks API's exclusive mode, as two tabs of one browser see it. */
function exclusiveLocks() {
  const queues = new Map();
  return {
    request(name, callback) {
      const run = (queues.get(name) ?? Promise.resolve()).then(() => callback({ name }));
      queues.set(
        name,
        run.catch(() => {})
      );
      return run;
    },
  };
}

const untilExpired = () => sleep((TTL_SECS + 1) * 1000);

function pretendFresh(storage) {
  const session = JSON.parse(storage.getItem('wechat-auth'));
  storage.setItem('wechat-auth', JSON.stringify({ ...session, expires_at: Date.now() + 3600_000 }));
}

describe('the return page URL', () => {
  test('ticket and error leave; other parameters, their order and encoding, and the fragment stay', () => {
    const cases = [
      ['https://a.example/done?a=1&ticket=T1&b=x%20y+z#frag', 'https://a.example/done?a=1&b=x%20y+z#frag'],
      ['https://a.example/done?ticket=T1', 'https://a.example/done'],
      ['https://a.example/done?ticket=T1#/route?ticket=inside', 'https://a.example/done#/route?ticket=inside'],
      ['https://a.example/done?error=access_denied&keep=1', 'https://a.example/done?keep=1'],
      ['https://a.example/p?k=2&k=1&tickets=3&xticket=4&ticket=T', 'https://a.example/p?k=2&k=1&tickets=3&xticket=4'],
      ['https://a.example/p?a=%E4%BD%A0&ticket=T&flag', 'https://a.example/p?a=%E4%BD%A0&flag'],
      ['https://a.example/plain#x', 'https://a.example/plain#x'],
      // A return page without a fragment inherits the one of WeChat's authorise URL.
      ['https://a.example/back?x=1&ticket=T#wechat_redirect', 'https://a.example/back?x=1'],
      ['https://a.example/back#wechat_redirect/x', 'https://a.example/back#wechat_redirect/x'],
    ];
    for (const [input, expected] of cases) assert.equal(stripAuthParams(input), expected, input);
  });

  test('reads ticket and error from the query only', () => {
    assert.deepEqual(readAuthParams('https://a.example/?ticket=T%2B1'), { ticket: 'T+1', error: null });
    assert.deepEqual(readAuthParams('https://a.example/#?ticket=T'), { ticket: null, error: null });
    assert.deepEqual(readAuthParams('https://a.example/?error=user_blocked'), { ticket: null, error: 'user_blocked' });
  });
});

describe('the redirect flow', () => {
  test('signInWithRedirect sends the browser to authorize with an S256 challenge of a stored verifier', async () => {
    const p = page('https://app.example.com/account?tab=orders&ticket=old#top');
    await p.auth.signInWithRedirect({ app: 'official_account', scope: 'snsapi_userinfo' });
    assert.equal(p.location.assigned.length, 1);
    const url = new URL(p.location.assigned[0]);
    assert.equal(`${url.origin}${url.pathname}`, `${service.baseUrl}/api/v1/web/authorize`);
    assert.deepEqual([...url.searchParams.keys()], ['app', 'scope', 'return_to', 'code_challenge']);
    assert.equal(url.searchParams.get('app'), 'official_account');
    assert.equal(url.searchParams.get('scope'), 'snsapi_userinfo');
    assert.equal(url.searchParams.get('return_to'), 'https://app.example.com/account?tab=orders#top');
    const verifier = p.flowStorage.getItem('wechat-auth.code_verifier');
    assert.match(verifier, /^[A-Za-z0-9_-]{43}$/);
    const expected = createHash('sha256').update(verifier).digest('base64url');
    assert.equal(url.searchParams.get('code_challenge'), expected);
    assert.equal(expected.length, 43);
  });

  test('each flow gets its own verifier; returnTo is taken as given', async () => {
    const p = page();
    await p.auth.signInWithRedirect({ app: 'website', returnTo: 'https://app.example.com/done' });
    const first = p.flowStorage.getItem('wechat-auth.code_verifier');
    await p.auth.signInWithRedirect({ app: 'website', returnTo: 'https://app.example.com/done' });
    assert.notEqual(p.flowStorage.getItem('wechat-auth.code_verifier'), first);
    const url = new URL(p.location.assigned[1]);
    assert.equal(url.searchParams.get('scope'), null);
    assert.equal(url.searchParams.get('return_to'), 'https://app.example.com/done');
  });

  test('the ticket leaves the address bar before it is redeemed, with the verifier', async () => {
    const p = page();
    await p.auth.signInWithRedirect({ app: 'official_account' });
    const verifier = p.flowStorage.getItem('wechat-auth.code_verifier');
    p.location.href = 'https://app.example.com/account?tab=orders&ticket=not-a-real-ticket#top';
    // A made-up ticket is refused; what matters here is what the page did on the way.
    await assert.rejects(p.auth.handleRedirectCallback(), AuthError);
    assert.deepEqual(p.history.replaced, [
      { state: { from: 'app' }, url: 'https://app.example.com/account?tab=orders#top' },
    ]);
    assert.equal(p.location.href, 'https://app.example.com/account?tab=orders#top');
    const redeem = p.requests.find((r) => r.path === '/api/v1/auth/ticket');
    assert.deepEqual(JSON.parse(redeem.body), { ticket: 'not-a-real-ticket', code_verifier: verifier });
    assert.equal(p.flowStorage.getItem('wechat-auth.code_verifier'), null, 'a verifier is used once');
    assert.equal(p.auth.user, null);
  });

  test('an error from the flow is an AuthError with its code, and leaves the address bar', async () => {
    const p = page('https://app.example.com/back?error=access_denied&x=1');
    await assert.rejects(p.auth.handleRedirectCallback(), { name: 'AuthError', code: 'access_denied' });
    assert.equal(p.location.href, 'https://app.example.com/back?x=1');
    assert.equal(p.requests.length, 0);
  });

  test('a page without ticket or error is left alone', async () => {
    const p = page();
    assert.equal(await p.auth.handleRedirectCallback(), null);
    assert.equal(p.history.replaced.length, 0);
  });
});

/** A GET that must answer 302, not followed: its Location and the cookies it set. */
async function redirectOf(url, headers = {}) {
  const res = await fetch(url, { redirect: 'manual', headers });
  assert.equal(res.status, 302, `${url} answered ${res.status}: ${await res.clone().text()}`);
  return {
    location: res.headers.get('location'),
    cookie: res.headers
      .getSetCookie()
      .map((set) => set.split(';')[0])
      .join('; '),
  };
}

/**
 * What the browser does after `signInWithRedirect`: our authorize, WeChat's page (the
 * sandbox's, where `name` allows at once, or refuses with `deny`), our callback with the
 * flow's cookie. Returns the URL it lands on.
 */
async function walkTheRedirect(p, name, { deny = false } = {}) {
  const authorize = await redirectOf(p.location.assigned.at(-1));
  const wechat = new URL(authorize.location);
  assert.equal(wechat.hash, '#wechat_redirect');
  wechat.hash = '';
  if (deny) wechat.searchParams.set('sandbox_action', 'deny');
  else wechat.searchParams.set('sandbox_user', name);
  const consent = await redirectOf(wechat.href);
  const callback = await redirectOf(consent.location, { cookie: authorize.cookie });
  return callback.location;
}

/** WeChat's code for sandbox user `name`, as the consent page gives it to a page of ours. */
async function wechatCode(name, scope = 'snsapi_userinfo') {
  const query = new URLSearchParams({
    appid: OA_APPID,
    redirect_uri: `${SITE}/landing`,
    response_type: 'code',
    scope,
    state: 'pagestate1',
    sandbox_user: name,
  });
  const { location } = await redirectOf(`${service.baseUrl}/sandbox/connect/oauth2/authorize?${query}`);
  const back = new URL(location);
  assert.equal(`${back.origin}${back.pathname}`, `${SITE}/landing`);
  assert.equal(back.searchParams.get('state'), 'pagestate1');
  return back.searchParams.get('code');
}

describe('against the sandbox WeChat pages', () => {
  test('signInWithCode with a code from the consent page signs in the Official Account user', async () => {
    const p = page();
    const who = name();
    const code = await wechatCode(who);
    const result = await p.auth.signInWithCode({ app: 'official_account', code });
    assert.equal(result.new_user, true);
    assert.equal(result.user.nickname, who);
    assert.equal(result.user.openid, null, 'no mini-program identity');
    assert.equal(result.user.identities.length, 1);
    assert.equal(result.user.identities[0].app, 'official_account');
    assert.equal(result.user.identities[0].appid, OA_APPID);
    assert.deepEqual(p.auth.user, result.user);

    const me = await (await p.auth.fetch('/api/v1/me')).json();
    assert.equal(me.id, result.user.id);
    assert.deepEqual(me.identities, result.user.identities);

    // A reloaded page posts the same code again: the same user, a fresh pair.
    const again = await page().auth.signInWithCode({ app: 'official_account', code });
    assert.equal(again.user.id, result.user.id);
    assert.notEqual(again.refresh_token, result.refresh_token);
  });

  test('a code WeChat never gave is AuthError invalid_code', async () => {
    await assert.rejects(page().auth.signInWithCode({ app: 'official_account', code: 'made-up-code' }), {
      name: 'AuthError',
      code: 'invalid_code',
    });
  });

  test('the redirect flow comes back with a ticket that the verifier redeems', async () => {
    const p = page();
    const who = name();
    await p.auth.signInWithRedirect({ app: 'official_account', scope: 'snsapi_userinfo' });
    const verifier = p.flowStorage.getItem('wechat-auth.code_verifier');
    const landed = new URL(await walkTheRedirect(p, who));
    assert.equal(`${landed.origin}${landed.pathname}`, `${SITE}/account`);
    assert.deepEqual([...landed.searchParams.keys()], ['tab', 'ticket']);
    assert.equal(landed.hash, '#top');
    const ticket = landed.searchParams.get('ticket');

    p.location.href = landed.href;
    const result = await p.auth.handleRedirectCallback();
    assert.equal(p.location.href, `${SITE}/account?tab=orders#top`);
    assert.equal(result.new_user, true);
    assert.equal(result.user.nickname, who);
    assert.deepEqual(
      result.user.identities.map((identity) => identity.app),
      ['official_account']
    );
    assert.equal(p.auth.user.id, result.user.id);
    const me = await p.auth.fetch('/api/v1/me');
    assert.equal(me.status, 200);
    assert.deepEqual((await me.json()).identities, result.user.identities);

    // A ticket works once, even with its verifier.
    const replay = await fetch(`${service.baseUrl}/api/v1/auth/ticket`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ticket, code_verifier: verifier }),
    });
    assert.equal(replay.status, 401);
    assert.equal((await replay.json()).code, 'invalid_grant');
  });

  test('a ticket with another verifier, or none, is refused: invalid_grant', async () => {
    for (const verifier of ['A'.repeat(43), null]) {
      const p = page();
      await p.auth.signInWithRedirect({ app: 'official_account' });
      if (verifier) p.flowStorage.setItem('wechat-auth.code_verifier', verifier);
      else p.flowStorage.removeItem('wechat-auth.code_verifier');
      p.location.href = await walkTheRedirect(p, name());
      assert.ok(readAuthParams(p.location.href).ticket);
      const redeemed = p.requests.length;
      await assert.rejects(p.auth.handleRedirectCallback(), {
        name: 'AuthError',
        code: 'invalid_grant',
        status: 401,
      });
      const sent = JSON.parse(p.requests[redeemed].body);
      assert.equal(sent.code_verifier, verifier ?? undefined, 'the verifier the page had');
      assert.equal(readAuthParams(p.location.href).ticket, null, 'the ticket left the address bar');
      assert.equal(p.auth.user, null);
    }
  });

  test('a refusal on the consent page rejects with access_denied', async () => {
    const p = page();
    await p.auth.signInWithRedirect({ app: 'official_account', scope: 'snsapi_userinfo' });
    p.location.href = await walkTheRedirect(p, null, { deny: true });
    assert.equal(readAuthParams(p.location.href).error, 'access_denied');
    await assert.rejects(p.auth.handleRedirectCallback(), { name: 'AuthError', code: 'access_denied' });
    assert.equal(p.location.href, `${SITE}/account?tab=orders#top`);
    assert.equal(p.requestsTo('/api/v1/auth/ticket'), 0);
  });

  test('the website QR flow signs in the website identity of the same person', async () => {
    const who = name();
    const oa = await page().auth.signInWithCode({ app: 'official_account', code: await wechatCode(who) });

    const p = page(`${SITE}/desk`);
    await p.auth.signInWithRedirect({ app: 'website' });
    assert.match(p.location.assigned[0], /[?&]app=website&return_to=/);
    p.location.href = await walkTheRedirect(p, who);
    const result = await p.auth.handleRedirectCallback();
    assert.equal(p.location.href, `${SITE}/desk`);
    assert.equal(result.new_user, false, 'one person, one user');
    assert.equal(result.user.id, oa.user.id);
    assert.deepEqual(
      result.user.identities.map((identity) => identity.app),
      ['official_account', 'website']
    );
  });
});

describe('fetch', () => {
  test('adds the Bearer token; 20 concurrent calls with an expired token make exactly one refresh', async () => {
    const { auth, login, requestsTo } = await signedInPage();
    await untilExpired();
    const answers = await Promise.all(Array.from({ length: 20 }, () => auth.fetch('/api/v1/me')));
    assert.deepEqual(
      answers.map((res) => res.status),
      Array(20).fill(200)
    );
    for (const res of answers) assert.equal((await res.json()).id, login.user.id);
    assert.equal(requestsTo('/api/v1/auth/refresh'), 1);
  });

  test('with a clock that says the token is fresh, the 401s share one refresh and are retried', async () => {
    const { auth, storage, requestsTo } = await signedInPage();
    await untilExpired();
    pretendFresh(storage);
    const answers = await Promise.all(Array.from({ length: 20 }, () => auth.fetch('/api/v1/me')));
    assert.deepEqual(
      answers.map((res) => res.status),
      Array(20).fill(200)
    );
    assert.equal(requestsTo('/api/v1/me'), 40);
    assert.equal(requestsTo('/api/v1/auth/refresh'), 1);
  });

  test('a retried request sends its body again', async () => {
    const { auth, storage, who, requestsTo } = await signedInPage();
    await untilExpired();
    pretendFresh(storage);
    const res = await auth.fetch('/api/v1/wechat/phone-number', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ code: `phone-${who}` }),
    });
    assert.equal(requestsTo('/api/v1/wechat/phone-number'), 2, 'refused once, then sent again');
    assert.equal(res.status, 200, await res.clone().text());
    assert.ok((await res.json()).phone_number);
  });

  test('a session revoked elsewhere signs the page out, and the 401 is the answer', async () => {
    const { auth, storage, requestsTo } = await signedInPage();
    const other = page();
    other.storage.setItem('wechat-auth', storage.getItem('wechat-auth'));
    await other.auth.logout();

    const seen = [];
    auth.onAuthStateChange((event) => seen.push(event));
    const res = await auth.fetch('/api/v1/me');
    assert.equal(res.status, 401);
    assert.equal(requestsTo('/api/v1/auth/refresh'), 1);
    assert.deepEqual(seen, ['SIGNED_OUT']);
    assert.equal(auth.user, null);
  });

  test('two tabs sharing storage and Web Locks refresh once between them', async () => {
    const { storage } = await signedInPage();
    const locks = exclusiveLocks();
    const tabA = page(undefined, { storage, locks });
    const tabB = page(undefined, { storage, locks });
    await untilExpired();
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) => (i % 2 ? tabA : tabB).auth.fetch('/api/v1/me'))
    );
    assert.deepEqual(
      answers.map((res) => res.status),
      Array(20).fill(200)
    );
    assert.equal(tabA.requestsTo('/api/v1/auth/refresh') + tabB.requestsTo('/api/v1/auth/refresh'), 1);
  });

  test('signed out, fetch sends no token', async () => {
    const p = page();
    const res = await p.auth.fetch('/api/v1/me');
    assert.equal(res.status, 401);
    assert.equal(p.requestsTo('/api/v1/auth/refresh'), 0);
  });
});

describe('logout and errors', () => {
  test('logout ends the session on the service and forgets it here', async () => {
    const { auth, storage, login } = await signedInPage();
    await auth.logout();
    assert.equal(auth.user, null);
    assert.equal(storage.getItem('wechat-auth'), null);
    const res = await fetch(`${service.baseUrl}/api/v1/me`, {
      headers: { authorization: `Bearer ${login.access_token}` },
    });
    assert.equal(res.status, 401);
  });

  test('a dead refresh token is AuthError invalid_grant with status and detail', async () => {
    const { auth, login } = await signedInPage();
    auth.setSession({ ...login, refresh_token: 'not-a-refresh-token' });
    const error = await auth.refreshSession().then(
      () => assert.fail('refreshed'),
      (e) => e
    );
    assert.ok(error instanceof AuthError);
    assert.equal(error.code, 'invalid_grant');
    assert.equal(error.status, 401);
    assert.equal(typeof error.detail, 'string');
    assert.equal(auth.user, null);
  });

  test('no answer at all is AuthError network_error with status 0', async () => {
    const auth = createAuth({
      baseUrl: 'http://127.0.0.1:9',
      storage: new MemoryStorage(),
      flowStorage: new MemoryStorage(),
    });
    await assert.rejects(auth.signInWithCode({ app: 'official_account', code: 'x' }), {
      code: 'network_error',
      status: 0,
    });
  });
});
