/** An identity of the user in one WeChat app (contract v1.2). */
export interface Identity {
  app: 'miniprogram' | 'official_account' | 'website';
  appid: string;
  openid: string;
}

/** The user object of the wechat-auth contract. */
export interface User {
  id: string;
  openid: string | null;
  unionid: string | null;
  phone_number: string | null;
  nickname: string | null;
  avatar_url: string | null;
  identities?: Identity[];
}

/** The answer of every sign-in and of refresh. */
export interface LoginResult {
  access_token: string;
  token_type: 'Bearer';
  expires_in: number;
  refresh_token: string;
  refresh_expires_in: number;
  new_user: boolean;
  user: User;
}

/** What is kept in storage. */
export interface Session {
  access_token: string;
  refresh_token: string;
  /** Milliseconds since the epoch, by this browser's clock. */
  expires_at: number;
  user: User;
}

/**
 * The contract's error codes (an `error` the redirect flow brought back is one of them, or
 * `access_denied`), plus the library's own: `network_error`, `not_signed_in`, `aborted`,
 * `http_error` (an answer that is not ours), `qr_login_denied`, `qr_login_expired`.
 */
export type AuthErrorCode =
  | 'invalid_request'
  | 'invalid_code'
  | 'code_used'
  | 'user_blocked'
  | 'user_disabled'
  | 'snapshot_user'
  | 'unauthorized'
  | 'invalid_grant'
  | 'invalid_state'
  | 'invalid_return_url'
  | 'access_denied'
  | 'app_not_configured'
  | 'not_found'
  | 'qr_login_closed'
  | 'rate_limited'
  | 'wechat_error'
  | 'wechat_unavailable'
  | 'internal'
  | 'network_error'
  | 'not_signed_in'
  | 'aborted'
  | 'http_error'
  | 'qr_login_denied'
  | 'qr_login_expired'
  | (string & {});

export declare class AuthError extends Error {
  readonly name: 'AuthError';
  readonly code: AuthErrorCode;
  /** The HTTP status; 0 when no answer came or the error came back in the address bar. */
  readonly status: number;
  readonly detail: string | null;
  /** The problem+json body, or the raw answer. */
  readonly body: unknown;
}

/** The Web Storage calls the library makes (localStorage and sessionStorage fit). */
export interface StorageLike {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

export interface LocationLike {
  readonly href: string;
  assign(url: string): void;
}

export interface HistoryLike {
  readonly state: unknown;
  replaceState(state: unknown, unused: string, url: string): void;
}

export interface LocksLike {
  request<T>(name: string, callback: () => Promise<T>): Promise<T>;
}

export interface CreateAuthOptions {
  /** The service as the browser reaches it, e.g. `https://auth.example.com`. */
  baseUrl: string;
  /** Where the session is kept; default `localStorage`. */
  storage?: StorageLike;
  /** Where the PKCE verifier waits for the return page; default `sessionStorage`. */
  flowStorage?: StorageLike;
  /** Storage key of the session; default `wechat-auth`. */
  storageKey?: string;
  fetch?: typeof fetch;
  location?: LocationLike;
  history?: HistoryLike;
  crypto?: Crypto;
  /** Serialises refreshes across tabs; default `navigator.locks` where there is one. */
  locks?: LocksLike;
}

export type App = 'official_account' | 'website';

export interface RedirectOptions {
  /** `official_account` (a page inside WeChat; the default) or `website` (QR on a computer). */
  app?: App;
  /** `snsapi_base` (silent) or `snsapi_userinfo` for the Official Account; `snsapi_login` for the website. */
  scope?: 'snsapi_base' | 'snsapi_userinfo' | 'snsapi_login';
  /** Where to come back; must be allowed by the service's WEB_RETURN_URLS. Default: this page. */
  returnTo?: string;
}

export type AuthEvent = 'SIGNED_IN' | 'SIGNED_OUT' | 'TOKEN_REFRESHED';

export type QrLoginStatus = 'pending' | 'scanned' | 'confirmed' | 'denied' | 'expired';

export interface QrLoginStarted {
  id: string;
  secret: string;
  expires_in: number;
  image_url: string;
}

export interface QrLoginOptions {
  /** The mini-program code to show (an absolute URL for an `<img src>`). */
  onImage?(imageUrl: string, started: QrLoginStarted): void;
  /** Each change: `scanned` (show "confirm on your phone"), then `confirmed`, `denied` or `expired`. */
  onStatus?(status: QrLoginStatus, body: { status: QrLoginStatus; [key: string]: unknown }): void;
  /** Stops polling; the promise then rejects with `aborted`. */
  signal?: AbortSignal;
}

export interface Auth {
  /** Sends the browser to WeChat through the service, with a PKCE challenge. */
  signInWithRedirect(options?: RedirectOptions): Promise<void>;
  /**
   * On the return page: removes `ticket`/`error` from the address bar, then redeems the
   * ticket. Null when the URL carries neither; rejects with the flow's `error` as code.
   */
  handleRedirectCallback(): Promise<LoginResult | null>;
  /** The page received WeChat's `code` itself and posts it. */
  signInWithCode(options: { app: App; code: string }): Promise<LoginResult>;
  /** Keeps tokens obtained elsewhere. */
  setSession(result: LoginResult): void;
  /** Refresh now (shares the refresh in flight); `invalid_grant` signs the page out. */
  refreshSession(): Promise<Session | null>;
  /** A valid access token, refreshed if needed; null when signed out. */
  getAccessToken(): Promise<string | null>;
  /**
   * fetch with the Bearer token; a 401 refreshes once (one refresh in flight) and retries
   * once. Paths starting with `/` are on `baseUrl`. A dead session signs the page out and
   * the 401 is returned.
   */
  fetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response>;
  /** Ends the session on the service and forgets it here. */
  logout(): Promise<void>;
  /** Returns a function that removes the listener. */
  onAuthStateChange(listener: (event: AuthEvent, session: Session | null) => void): () => void;
  /** A computer signs in by scanning a code with the mini program. */
  qrLogin: {
    /** Resolves when the user confirms on the phone; rejects on `qr_login_denied`/`qr_login_expired`. */
    start(options?: QrLoginOptions): Promise<LoginResult>;
  };
  readonly user: User | null;
  readonly session: Session | null;
}

export declare function createAuth(options: CreateAuthOptions): Auth;

/** `ticket` and `error` from the query of `href`. */
export declare function readAuthParams(href: string): { ticket: string | null; error: string | null };

/**
 * `href` without `ticket` and `error`; other parameters and the fragment kept as they are,
 * except a fragment that is WeChat's `#wechat_redirect`.
 */
export declare function stripAuthParams(href: string): string;

/** An RFC 7636 S256 pair: a 43-character verifier and its challenge. */
export declare function createPkcePair(crypto?: Crypto): Promise<{ verifier: string; challenge: string }>;
