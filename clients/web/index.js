// Sign a web page in to wechat-auth: the redirect flow with PKCE and a one-time ticket,
// the front-end-code flow, the computer sign-in by the mini program, and `fetch` with the
// Bearer token and one refresh at a time (two racing refreshes revoke the session by
// design). No dependencies.

const DEFAULT_STORAGE_KEY = 'wechat-auth';
// The parameters the service adds to `return_to`.
const AUTH_PARAMS = ['ticket', 'error'];
// The fragment WeChat's authorise URLs end with.
const WECHAT_FRAGMENT = '#wechat_redirect';

export class AuthError extends Error {
  constructor(code, status, detail, body) {
    super(detail ? `${code}: ${detail}` : code);
    this.name = 'AuthError';
    this.code = code;
    this.status = status;
    this.detail = detail ?? null;
    this.body = body ?? null;
  }
}

function decodeName(raw) {
  try {
    return decodeURIComponent(raw.replace(/\+/g, ' '));
  } catch {
    return raw;
  }
}

function splitUrl(href) {
  const hashAt = href.indexOf('#');
  const fragment = hashAt === -1 ? '' : href.slice(hashAt);
  const beforeHash = hashAt === -1 ? href : href.slice(0, hashAt);
  const queryAt = beforeHash.indexOf('?');
  return {
    base: queryAt === -1 ? beforeHash : beforeHash.slice(0, queryAt),
    query: queryAt === -1 ? '' : beforeHash.slice(queryAt + 1),
    fragment,
  };
}

/** `ticket` and `error` as the service put them in the query of `href` (null when absent). */
export function readAuthParams(href) {
  const params = new URLSearchParams(splitUrl(href).query);
  return { ticket: params.get('ticket'), error: params.get('error') };
}

/**
 * `href` without `ticket` and `error` in its query. Every other parameter is kept byte for
 * byte and in order, and so is the fragment, except WeChat's own `#wechat_redirect`.
 */
export function stripAuthParams(href) {
  const { base, query, fragment } = splitUrl(href);
  const kept = query
    .split('&')
    .filter((part) => part !== '' && !AUTH_PARAMS.includes(decodeName(part.split('=')[0])));
  // A redirect without a fragment keeps the one of the URL it answered, so a return page
  // that had none arrives with the `#wechat_redirect` of WeChat's authorise URL.
  const pageFragment = fragment === WECHAT_FRAGMENT ? '' : fragment;
  return base + (kept.length ? `?${kept.join('&')}` : '') + pageFragment;
}

function base64url(bytes) {
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** An RFC 7636 pair: a 43-character verifier and its S256 challenge. */
export async function createPkcePair(crypto = globalThis.crypto) {
  const verifier = base64url(crypto.getRandomValues(new Uint8Array(32)));
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier));
  return { verifier, challenge: base64url(new Uint8Array(digest)) };
}

async function errorFromResponse(res) {
  const text = await res.text().catch(() => '');
  let body = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON: not our answer
  }
  if (body && typeof body === 'object' && typeof body.code === 'string') {
    return new AuthError(body.code, res.status, body.detail ?? body.title ?? null, body);
  }
  return new AuthError('http_error', res.status, `unexpected answer with status ${res.status}`, body);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export function createAuth(options) {
  if (!options?.baseUrl) throw new TypeError('createAuth needs { baseUrl }');
  const baseUrl = options.baseUrl.replace(/\/+$/, '');
  const storage = options.storage ?? globalThis.localStorage;
  const flowStorage = options.flowStorage ?? globalThis.sessionStorage;
  const storageKey = options.storageKey ?? DEFAULT_STORAGE_KEY;
  const verifierKey = `${storageKey}.code_verifier`;
  const fetchImpl = options.fetch ?? ((...args) => globalThis.fetch(...args));
  const location = options.location ?? globalThis.location;
  const history = options.history ?? globalThis.history;
  const crypto = options.crypto ?? globalThis.crypto;
  // Tabs share the stored refresh token; a Web Lock keeps them from refreshing it twice.
  const locks = options.locks ?? globalThis.navigator?.locks;
  let listeners = [];
  let refreshInFlight = null;

  function readSession() {
    const raw = storage.getItem(storageKey);
    if (!raw) return null;
    try {
      return JSON.parse(raw);
    } catch {
      return null;
    }
  }

  function emit(event, session) {
    for (const listener of listeners.slice()) listener(event, session);
  }

  function saveSession(result, event) {
    const session = {
      access_token: result.access_token,
      refresh_token: result.refresh_token,
      expires_at: Date.now() + result.expires_in * 1000,
      user: result.user,
    };
    storage.setItem(storageKey, JSON.stringify(session));
    emit(event, session);
    return session;
  }

  function clearSession() {
    const had = readSession() !== null;
    storage.removeItem(storageKey);
    if (had) emit('SIGNED_OUT', null);
  }

  function loginFields(body) {
    const { status: _status, ...result } = body;
    return result;
  }

  // One of our JSON endpoints: the body on 2xx, an AuthError otherwise.
  async function call(method, path, body, token, signal) {
    const headers = {};
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (token) headers.authorization = `Bearer ${token}`;
    let res;
    try {
      res = await fetchImpl(`${baseUrl}${path}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal,
      });
    } catch (error) {
      if (signal?.aborted) throw new AuthError('aborted', 0, 'stopped by its signal');
      throw new AuthError('network_error', 0, error?.message ?? 'fetch failed', error);
    }
    if (!res.ok) throw await errorFromResponse(res);
    return res.status === 204 ? null : res.json();
  }

  async function signedIn(path, body) {
    const result = await call('POST', path, body);
    saveSession(result, 'SIGNED_IN');
    return result;
  }

  async function signInWithRedirect({ app = 'official_account', scope, returnTo } = {}) {
    const { verifier, challenge } = await createPkcePair(crypto);
    flowStorage.setItem(verifierKey, verifier);
    const params = new URLSearchParams({ app });
    if (scope) params.set('scope', scope);
    params.set('return_to', returnTo ?? stripAuthParams(location.href));
    params.set('code_challenge', challenge);
    location.assign(`${baseUrl}/api/v1/web/authorize?${params}`);
  }

  async function handleRedirectCallback() {
    const href = location.href;
    const { ticket, error } = readAuthParams(href);
    if (!ticket && !error) return null;
    // Out of the address bar (and so out of history, bookmarks and Referer) before anything
    // can fail: a ticket works once.
    history.replaceState(history.state, '', stripAuthParams(href));
    const verifier = flowStorage.getItem(verifierKey);
    flowStorage.removeItem(verifierKey);
    if (error) throw new AuthError(error, 0, 'the sign-in did not finish');
    const body = { ticket };
    if (verifier) body.code_verifier = verifier;
    return signedIn('/api/v1/auth/ticket', body);
  }

  function signInWithCode({ app, code }) {
    return signedIn('/api/v1/auth/web/login', { app, code });
  }

  function setSession(result) {
    saveSession(result, 'SIGNED_IN');
  }

  async function refreshNow(presented) {
    // Another tab may have refreshed while this one waited for the lock.
    const current = readSession();
    if (!current) throw new AuthError('not_signed_in', 0, 'no session');
    if (current.refresh_token !== presented) return current;
    try {
      const result = await call('POST', '/api/v1/auth/refresh', { refresh_token: presented });
      return saveSession(result, 'TOKEN_REFRESHED');
    } catch (error) {
      if (error.code === 'invalid_grant') clearSession();
      throw error;
    }
  }

  // One refresh in flight for the page (and, with Web Locks, for all its tabs). A dead
  // refresh token (invalid_grant) ends the session here: the page must sign in again.
  function refreshSession() {
    if (!refreshInFlight) {
      const session = readSession();
      const run = session
        ? () => refreshNow(session.refresh_token)
        : () => Promise.reject(new AuthError('not_signed_in', 0, 'no session'));
      refreshInFlight = (locks ? locks.request(`${storageKey}.refresh`, run) : run()).finally(() => {
        refreshInFlight = null;
      });
    }
    return refreshInFlight;
  }

  // A valid access token, refreshed when our clock says it expired; null when signed out.
  async function getAccessToken() {
    const session = readSession();
    if (!session) return null;
    if (Date.now() < session.expires_at) return session.access_token;
    try {
      return (await refreshSession()).access_token;
    } catch (error) {
      if (error.code === 'invalid_grant' || error.code === 'not_signed_in') return null;
      throw error;
    }
  }

  function withBearer(request, token) {
    const headers = new Headers(request.headers);
    if (token) headers.set('authorization', `Bearer ${token}`);
    return new Request(request, { headers });
  }

  async function authFetch(input, init) {
    const target = typeof input === 'string' && input.startsWith('/') ? `${baseUrl}${input}` : input;
    const request = new Request(target, init);
    const retry = request.clone();
    const token = await getAccessToken();
    const res = await fetchImpl(withBearer(request, token));
    if (!token || res.status !== 401) return res;
    const problem = await res
      .clone()
      .json()
      .catch(() => null);
    if (problem?.code && problem.code !== 'unauthorized') return res;
    const current = readSession();
    let fresh;
    if (current && current.access_token !== token) {
      fresh = current.access_token;
    } else {
      try {
        fresh = (await refreshSession()).access_token;
      } catch (error) {
        // Signed out (the listeners heard it): the 401 is the answer.
        if (error.code === 'invalid_grant' || error.code === 'not_signed_in') return res;
        throw error;
      }
    }
    return fetchImpl(withBearer(retry, fresh));
  }

  async function logout() {
    const session = readSession();
    if (!session) return;
    try {
      await call('POST', '/api/v1/auth/logout', undefined, session.access_token);
    } catch (error) {
      // Already expired or revoked: the session is over either way.
      if (error.status !== 401) throw error;
    } finally {
      clearSession();
    }
  }

  // The computer shows a code; the user scans it with the mini program and confirms there.
  async function startQrLogin({ onImage, onStatus, signal } = {}) {
    const created = await call('POST', '/api/v1/qr-login', undefined, undefined, signal);
    const imageUrl = new URL(created.image_url, `${baseUrl}/`).href;
    onImage?.(imageUrl, created);
    const deadline = Date.now() + created.expires_in * 1000;
    const poll = `/api/v1/qr-login/${encodeURIComponent(created.id)}?secret=${encodeURIComponent(created.secret)}&wait=25`;
    let status = 'pending';
    for (;;) {
      let body;
      try {
        body = await call('GET', poll, undefined, undefined, signal);
      } catch (error) {
        const passing = error.code === 'network_error' || error.status === 429 || error.status >= 500;
        if (!passing || Date.now() > deadline) throw error;
        await sleep(1000);
        continue;
      }
      if (body.status !== status) {
        status = body.status;
        onStatus?.(status, body);
      }
      if (status === 'confirmed') {
        const result = loginFields(body);
        saveSession(result, 'SIGNED_IN');
        return result;
      }
      if (status === 'denied') throw new AuthError('qr_login_denied', 0, 'the user said no on the phone', body);
      if (status === 'expired') throw new AuthError('qr_login_expired', 0, 'the code expired', body);
    }
  }

  return {
    signInWithRedirect,
    handleRedirectCallback,
    signInWithCode,
    setSession,
    refreshSession: async () => {
      await refreshSession();
      return readSession();
    },
    getAccessToken,
    fetch: authFetch,
    logout,
    onAuthStateChange(listener) {
      listeners.push(listener);
      return () => {
        listeners = listeners.filter((l) => l !== listener);
      };
    },
    qrLogin: { start: startQrLogin },
    get user() {
      return readSession()?.user ?? null;
    },
    get session() {
      return readSession();
    },
  };
}
