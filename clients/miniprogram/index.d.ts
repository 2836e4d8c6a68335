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

/** The answer of login and refresh. */
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
  /** Milliseconds since the epoch, by this device's clock. */
  expires_at: number;
  user: User;
}

export interface PhoneNumber {
  phone_number: string;
  pure_phone_number: string;
  country_code: string;
}

export interface UserInfo {
  nickname: string | null;
  avatar_url: string | null;
  gender: number | null;
  country: string | null;
  province: string | null;
  city: string | null;
  language: string | null;
  unionid: string | null;
}

/**
 * The contract's error codes, plus the library's own for failures before an answer:
 * `network_error` (wx.request failed), `wx_login_failed`, `not_signed_in`, `http_error`
 * (an answer that is not ours).
 */
export type AuthErrorCode =
  | 'invalid_request'
  | 'invalid_code'
  | 'code_used'
  | 'user_blocked'
  | 'user_disabled'
  | 'unauthorized'
  | 'invalid_grant'
  | 'not_found'
  | 'method_not_allowed'
  | 'payload_too_large'
  | 'unsupported_media_type'
  | 'decrypt_failed'
  | 'watermark_mismatch'
  | 'signature_mismatch'
  | 'openid_mismatch'
  | 'rate_limited'
  | 'wechat_error'
  | 'wechat_unavailable'
  | 'app_not_configured'
  | 'miniprogram_required'
  | 'qr_login_closed'
  | 'internal'
  | 'network_error'
  | 'wx_login_failed'
  | 'not_signed_in'
  | 'http_error'
  | (string & {});

export declare class AuthError extends Error {
  readonly name: 'AuthError';
  readonly code: AuthErrorCode;
  /** The HTTP status; 0 when no answer came. */
  readonly status: number;
  readonly detail: string | null;
  /** The problem+json body (or the raw answer, or the wx failure). */
  readonly body: unknown;
}

/** Where the session is kept; defaults to wx.getStorageSync/setStorageSync/removeStorageSync. */
export interface SessionStorage {
  get(key: string): Session | null | undefined | '';
  set(key: string, value: Session): void;
  remove(key: string): void;
}

/** The parts of wx.request's answer the library relies on. */
export interface RequestResult<T = unknown> {
  statusCode: number;
  data: T;
  header: Record<string, string>;
  [key: string]: unknown;
}

/** wx.request's options, minus the callbacks; `url` may be a path on `baseUrl`. */
export interface RequestOptions {
  url: string;
  method?: 'GET' | 'POST' | 'PUT' | 'DELETE' | 'PATCH' | 'HEAD' | 'OPTIONS';
  data?: string | object | ArrayBuffer;
  header?: Record<string, string>;
  dataType?: 'json' | string;
  responseType?: 'text' | 'arraybuffer';
  timeout?: number;
  [key: string]: unknown;
}

/** The parts of the wx runtime the library calls. */
export interface WxLike {
  login(options: { success(res: { code?: string; errMsg?: string }): void; fail(err: { errMsg?: string }): void }): void;
  request(options: RequestOptions & { success(res: RequestResult): void; fail(err: { errMsg?: string }): void }): void;
  getStorageSync(key: string): any;
  setStorageSync(key: string, value: any): void;
  removeStorageSync(key: string): void;
}

export interface CreateAuthOptions {
  /** The service, e.g. `https://auth.example.com` (a request domain of the mini program). */
  baseUrl: string;
  storage?: SessionStorage;
  /** Storage key of the session; default `wechat-auth`. */
  storageKey?: string;
  /** The wx runtime; default the global `wx`. */
  wx?: WxLike;
}

/** The getPhoneNumber button's event (`bindgetphonenumber`). */
export interface PhoneNumberEvent {
  detail: { code?: string; encryptedData?: string; iv?: string; errMsg?: string };
}

/** wx.getUserProfile's result, or an event whose `detail` carries the same fields. */
export interface UserProfileResult {
  encryptedData?: string;
  iv?: string;
  rawData?: string;
  signature?: string;
  detail?: { encryptedData?: string; iv?: string; rawData?: string; signature?: string };
}

export type AuthEvent = 'SIGNED_IN' | 'SIGNED_OUT' | 'TOKEN_REFRESHED' | 'USER_UPDATED';

export interface QrLoginScan {
  status: 'scanned';
  /** Who asked, so the user can tell their own computer from someone else's. */
  requested_by: { ip: string; user_agent: string | null };
}

export interface QrLoginAnswer {
  status: 'confirmed' | 'denied';
}

export interface Auth {
  /** wx.login, then the service's login; the session is stored. */
  login(): Promise<LoginResult>;
  /**
   * wx.request with the Bearer token: logs in first when there is no session, refreshes
   * once on 401 (one refresh in flight for all requests) and retries once, logs in again
   * when the session is gone. Resolves on every HTTP status, like wx.request.
   */
  request<T = any>(options: RequestOptions): Promise<RequestResult<T>>;
  /** A valid access token, for calls the library does not make (wx.uploadFile, sockets). */
  getAccessToken(): Promise<string>;
  /** Refresh now (shares the refresh in flight); logs in again when the session is gone. */
  refresh(): Promise<LoginResult>;
  /** Sends the getPhoneNumber event's `code` (or `encryptedData`/`iv`); null when declined. */
  phoneNumber(event: PhoneNumberEvent): Promise<PhoneNumber | null>;
  /** Sends wx.getUserProfile's encrypted profile; saves nickname and avatar on the user. */
  userInfo(result: UserProfileResult): Promise<UserInfo>;
  /** Ends the session on the service and forgets it here. */
  logout(): Promise<void>;
  /** Returns a function that removes the listener. */
  onAuthStateChange(listener: (event: AuthEvent, session: Session | null) => void): () => void;
  /** Computer sign-in: the mini-program page the computer's code opens. */
  qrLogin: {
    /** `scene` as the page's `onLoad(options)` receives it (URL-encoded is fine). */
    scan(scene: string): Promise<QrLoginScan>;
    confirm(id: string): Promise<QrLoginAnswer>;
    deny(id: string): Promise<QrLoginAnswer>;
  };
  readonly user: User | null;
  readonly session: Session | null;
}

export declare function createAuth(options: CreateAuthOptions): Auth;
