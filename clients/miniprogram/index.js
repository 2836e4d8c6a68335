'use strict';

// Sign a mini program in to wechat-auth: wx.login, tokens in wx storage, Bearer on every
// request, one refresh at a time (two racing refreshes revoke the session by design),
// and a fresh wx.login when the session is gone. No dependencies; CommonJS so that the
// developer tools' "build npm" takes it as is.

var DEFAULT_STORAGE_KEY = 'wechat-auth';

// An ES5 constructor rather than `class extends Error`: the developer tools may compile
// npm packages to ES5, where a subclass of Error loses its prototype and `instanceof`.
function AuthError(code, status, detail, body) {
  this.name = 'AuthError';
  this.message = detail ? code + ': ' + detail : code;
  this.code = code;
  this.status = status;
  this.detail = detail || null;
  this.body = body === undefined ? null : body;
  var stack = new Error(this.message).stack;
  if (stack) this.stack = stack;
}
AuthError.prototype = Object.create(Error.prototype, {
  constructor: { value: AuthError, writable: true, configurable: true },
});

// The mini program's global `wx`, looked up where no local name hides it.
function globalWx() {
  return typeof wx === 'undefined' ? undefined : wx;
}

// Our problem+json body, or whatever came back when the answer is not ours (a proxy's
// error page, an empty body).
function errorFromResponse(res) {
  var body = res.data;
  if (body && typeof body === 'object' && typeof body.code === 'string') {
    return new AuthError(body.code, res.statusCode, body.detail || body.title || null, body);
  }
  return new AuthError('http_error', res.statusCode, 'unexpected answer with status ' + res.statusCode, body);
}

function trimSlash(url) {
  return url.replace(/\/+$/, '');
}

function wxStorage(wx) {
  return {
    get: function (key) {
      var value = wx.getStorageSync(key);
      return value === '' ? null : value;
    },
    set: function (key, value) {
      wx.setStorageSync(key, value);
    },
    remove: function (key) {
      wx.removeStorageSync(key);
    },
  };
}

function createAuth(options) {
  if (!options || !options.baseUrl) throw new TypeError('createAuth needs { baseUrl }');
  var wx = options.wx || globalWx();
  if (!wx) throw new TypeError('createAuth: no wx runtime (pass { wx } outside a mini program)');
  var baseUrl = trimSlash(options.baseUrl);
  var storage = options.storage || wxStorage(wx);
  var storageKey = options.storageKey || DEFAULT_STORAGE_KEY;
  var listeners = [];
  var loginInFlight = null;
  var refreshInFlight = null;

  function now() {
    return Date.now();
  }

  function readSession() {
    var value = storage.get(storageKey);
    if (!value) return null;
    if (typeof value === 'string') {
      try {
        return JSON.parse(value);
      } catch (e) {
        return null;
      }
    }
    return value;
  }

  function emit(event, session) {
    listeners.slice().forEach(function (listener) {
      listener(event, session);
    });
  }

  function saveSession(result, event) {
    var session = {
      access_token: result.access_token,
      refresh_token: result.refresh_token,
      expires_at: now() + result.expires_in * 1000,
      user: result.user,
    };
    storage.set(storageKey, session);
    emit(event, session);
    return session;
  }

  function clearSession() {
    var had = readSession() !== null;
    storage.remove(storageKey);
    if (had) emit('SIGNED_OUT', null);
  }

  function absolute(url) {
    return /^https?:\/\//i.test(url) ? url : baseUrl + (url.charAt(0) === '/' ? '' : '/') + url;
  }

  // wx.request as a promise that resolves on every HTTP status and rejects only when no
  // answer came (no network, a domain not on the allow-list, a timeout).
  function send(options) {
    return new Promise(function (resolve, reject) {
      var call = Object.assign({}, options, {
        success: resolve,
        fail: function (err) {
          reject(new AuthError('network_error', 0, (err && err.errMsg) || 'request failed', err));
        },
      });
      wx.request(call);
    });
  }

  // A call to one of our own JSON endpoints: the answer body on 2xx, an AuthError otherwise.
  function call(method, path, data, token) {
    var header = data === undefined ? {} : { 'content-type': 'application/json' };
    if (token) header.Authorization = 'Bearer ' + token;
    return send({ url: baseUrl + path, method: method, data: data, header: header, dataType: 'json' }).then(
      function (res) {
        if (res.statusCode >= 200 && res.statusCode < 300) return res.data;
        throw errorFromResponse(res);
      }
    );
  }

  function wxLogin() {
    return new Promise(function (resolve, reject) {
      wx.login({
        success: function (res) {
          if (res && res.code) resolve(res.code);
          else reject(new AuthError('wx_login_failed', 0, (res && res.errMsg) || 'wx.login gave no code', res));
        },
        fail: function (err) {
          reject(new AuthError('wx_login_failed', 0, (err && err.errMsg) || 'wx.login failed', err));
        },
      });
    });
  }

  // Concurrent callers share one wx.login: each wx.login makes WeChat issue a new
  // session_key, and only the last one posted here decrypts.
  function login() {
    if (!loginInFlight) {
      loginInFlight = wxLogin()
        .then(function (code) {
          return call('POST', '/api/v1/auth/login', { code: code });
        })
        .then(function (result) {
          saveSession(result, 'SIGNED_IN');
          return result;
        })
        .then(
          function (result) {
            loginInFlight = null;
            return result;
          },
          function (error) {
            loginInFlight = null;
            throw error;
          }
        );
    }
    return loginInFlight;
  }

  // One refresh in flight for the whole mini program. A dead refresh token (invalid_grant:
  // expired, revoked, reused) means the session is over, so log in again; any other
  // failure (network, 5xx) keeps the session for a later try.
  function refresh() {
    if (!refreshInFlight) {
      var session = readSession();
      var attempt = session
        ? call('POST', '/api/v1/auth/refresh', { refresh_token: session.refresh_token }).then(
            function (result) {
              saveSession(result, 'TOKEN_REFRESHED');
              return result;
            },
            function (error) {
              if (error.code !== 'invalid_grant') throw error;
              clearSession();
              return login();
            }
          )
        : login();
      refreshInFlight = attempt.then(
        function (result) {
          refreshInFlight = null;
          return result;
        },
        function (error) {
          refreshInFlight = null;
          throw error;
        }
      );
    }
    return refreshInFlight;
  }

  // A usable access token: log in when there is no session, refresh when it has expired
  // by our clock (the server's 401 covers a clock that is wrong).
  function getAccessToken() {
    var session = readSession();
    if (!session) return login().then(readToken);
    if (now() >= session.expires_at) return refresh().then(readToken);
    return Promise.resolve(session.access_token);
  }

  function readToken() {
    var session = readSession();
    if (!session) throw new AuthError('not_signed_in', 0, 'no session');
    return session.access_token;
  }

  function withBearer(options, token) {
    var header = Object.assign({}, options.header || {});
    Object.keys(header).forEach(function (name) {
      if (name.toLowerCase() === 'authorization') delete header[name];
    });
    header.Authorization = 'Bearer ' + token;
    return Object.assign({}, options, { url: absolute(options.url), header: header });
  }

  function isExpiredToken(res) {
    return res.statusCode === 401 && !(res.data && res.data.code && res.data.code !== 'unauthorized');
  }

  function request(options) {
    if (!options || !options.url) return Promise.reject(new TypeError('request needs { url }'));
    return getAccessToken().then(function (token) {
      return send(withBearer(options, token)).then(function (res) {
        if (!isExpiredToken(res)) return res;
        // Another request may have refreshed already while this one was in the air.
        var current = readSession();
        var fresh =
          current && current.access_token !== token ? Promise.resolve(current.access_token) : refresh().then(readToken);
        return fresh.then(function (newToken) {
          return send(withBearer(options, newToken));
        });
      });
    });
  }

  // Our endpoints through the same Bearer/refresh path: the body on 2xx, an AuthError
  // otherwise.
  function api(method, path, data) {
    return request({
      url: path,
      method: method,
      data: data,
      header: data === undefined ? {} : { 'content-type': 'application/json' },
      dataType: 'json',
    }).then(function (res) {
      if (res.statusCode >= 200 && res.statusCode < 300) return res.data;
      throw errorFromResponse(res);
    });
  }

  function updateUser(fields) {
    var session = readSession();
    if (!session) return;
    session.user = Object.assign({}, session.user, fields);
    storage.set(storageKey, session);
    emit('USER_UPDATED', session);
  }

  // The getPhoneNumber button's event. Resolves null when the user declined.
  function phoneNumber(event) {
    var detail = (event && event.detail) || {};
    var body;
    if (detail.code) body = { code: detail.code };
    else if (detail.encryptedData && detail.iv) body = { encrypted_data: detail.encryptedData, iv: detail.iv };
    else return Promise.resolve(null);
    return api('POST', '/api/v1/wechat/phone-number', body).then(function (phone) {
      updateUser({ phone_number: phone.phone_number });
      return phone;
    }, staleSessionKey);
  }

  // wx.getUserProfile's result (or a button event carrying the same fields).
  function userInfo(result) {
    var source = (result && result.detail) || result || {};
    var body = { encrypted_data: source.encryptedData, iv: source.iv };
    if (source.rawData && source.signature) {
      body.raw_data = source.rawData;
      body.signature = source.signature;
    }
    return api('POST', '/api/v1/wechat/user-info', body).then(function (profile) {
      updateUser({ nickname: profile.nickname, avatar_url: profile.avatar_url });
      return profile;
    }, staleSessionKey);
  }

  // A payload sealed with a session_key we no longer hold cannot be opened; a fresh login
  // makes the user's next tap work, so do it now and still report the failure.
  function staleSessionKey(error) {
    if (error.code !== 'decrypt_failed') throw error;
    return login().then(
      function () {
        throw error;
      },
      function () {
        throw error;
      }
    );
  }

  function logout() {
    var session = readSession();
    if (!session) return Promise.resolve();
    return call('POST', '/api/v1/auth/logout', undefined, session.access_token).then(
      function () {
        clearSession();
      },
      function (error) {
        clearSession();
        // Already expired or revoked: the session is over either way.
        if (error.status !== 401) throw error;
      }
    );
  }

  // A computer's sign-in: the scene of the code it shows is the sign-in's id.
  function qrPath(scene, action) {
    var id = decodeURIComponent(String(scene || ''));
    if (!/^[A-Za-z0-9]{1,64}$/.test(id)) {
      return Promise.reject(new AuthError('invalid_request', 0, 'not a sign-in code'));
    }
    return api('POST', '/api/v1/qr-login/' + id + '/' + action);
  }

  return {
    login: login,
    request: request,
    getAccessToken: getAccessToken,
    refresh: refresh,
    phoneNumber: phoneNumber,
    userInfo: userInfo,
    logout: logout,
    onAuthStateChange: function (listener) {
      listeners.push(listener);
      return function () {
        listeners = listeners.filter(function (l) {
          return l !== listener;
        });
      };
    },
    qrLogin: {
      scan: function (scene) {
        return qrPath(scene, 'scan');
      },
      confirm: function (id) {
        return qrPath(id, 'confirm');
      },
      deny: function (id) {
        return qrPath(id, 'deny');
      },
    },
    get user() {
      var session = readSession();
      return session ? session.user : null;
    },
    get session() {
      return readSession();
    },
  };
}

module.exports = { createAuth: createAuth, AuthError: AuthError };
