// A stand-in for the mini-program runtime: wx.request performs real HTTP (Node's fetch)
// against the real service, wx.login hands out sandbox codes, wx storage is a Map that
// copies values as WeChat's does. It counts what the library asked for.

import { sandboxCode } from './service.mjs';

export function createWx({ user = 'alice' } = {}) {
  const store = new Map();
  const wx = {
    user,
    /** Codes wx.login hands out before falling back to `${user}-<random>`. */
    nextCodes: [],
    logins: 0,
    /** Every request the library made: `{ method, path }`. */
    requests: [],
    requestsTo(path) {
      return wx.requests.filter((r) => r.path === path).length;
    },

    login({ success }) {
      wx.logins += 1;
      const code = wx.nextCodes.length ? wx.nextCodes.shift() : sandboxCode(wx.user);
      setTimeout(() => success({ code, errMsg: 'login:ok' }), 0);
    },

    request({ url, method = 'GET', data, header = {}, dataType = 'json', success, fail }) {
      const target = new URL(url);
      const headers = { 'content-type': 'application/json', ...header };
      let body;
      if (method === 'GET' || method === 'HEAD') {
        if (data && typeof data === 'object') {
          for (const [key, value] of Object.entries(data)) target.searchParams.set(key, String(value));
        }
      } else if (data !== undefined) {
        body = typeof data === 'string' ? data : JSON.stringify(data);
      }
      wx.requests.push({ method, path: target.pathname });
      fetch(target, { method, headers, body }).then(
        async (res) => {
          const text = await res.text();
          let parsed = text;
          if (dataType === 'json' && text) {
            try {
              parsed = JSON.parse(text);
            } catch {
              parsed = text;
            }
          }
          success({ statusCode: res.status, data: parsed, header: Object.fromEntries(res.headers), errMsg: 'request:ok' });
        },
        (error) => fail({ errMsg: `request:fail ${error.message}` })
      );
    },

    getStorageSync(key) {
      return store.has(key) ? JSON.parse(store.get(key)) : '';
    },
    setStorageSync(key, value) {
      store.set(key, JSON.stringify(value));
    },
    removeStorageSync(key) {
      store.delete(key);
    },
  };
  return wx;
}
