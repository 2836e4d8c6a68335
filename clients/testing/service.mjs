// Starts the real wechat-auth binary in sandbox mode on a free port with its own SQLite
// database, for the client libraries' tests. WECHAT_AUTH_BIN names the binary (the Rust
// test passes Cargo's); the default is the debug build of this repository.

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

function freePort() {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolvePort(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function startOnce(env) {
  const bin = process.env.WECHAT_AUTH_BIN || join(repoRoot, 'target/debug/wechat-auth');
  const dir = mkdtempSync(join(tmpdir(), 'wechat-auth-client-test-'));
  const port = await freePort();
  const address = `127.0.0.1:${port}`;
  const child = spawn(bin, [], {
    env: {
      PATH: process.env.PATH,
      WECHAT_SANDBOX: 'true',
      BIND_ADDR: address,
      DATABASE_URL: `sqlite://${dir}/auth.db?mode=rwc`,
      RUST_LOG: 'warn',
      ...env,
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  child.stderr.on('data', (chunk) => {
    log += chunk;
  });
  let exited = false;
  child.on('exit', () => {
    exited = true;
  });
  const baseUrl = `http://${address}`;
  const stop = async () => {
    if (!exited) {
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await gone;
    }
    rmSync(dir, { recursive: true, force: true });
  };
  for (let i = 0; i < 400 && !exited; i++) {
    try {
      const res = await fetch(`${baseUrl}/healthz`);
      if (res.ok) return { baseUrl, stop, log: () => log };
    } catch {
      // not listening yet
    }
    await sleep(50);
  }
  await stop();
  return { error: `the service did not start (${bin}):\n${log}` };
}

/** The running service: `{ baseUrl, stop(), log() }`. */
export async function startService(env = {}) {
  let last;
  // The port is free when picked but another process may take it before the service binds.
  for (let attempt = 0; attempt < 3; attempt++) {
    const started = await startOnce(env);
    if (!started.error) return started;
    last = started.error;
  }
  throw new Error(last);
}

/** A sandbox code that logs in user `name`; every code works once. */
export function sandboxCode(name) {
  return `${name}-${Math.random().toString(36).slice(2)}${Date.now().toString(36)}`;
}

/** A plain login (the way a test gets tokens without the library under test). */
export async function loginAs(baseUrl, name) {
  const res = await fetch(`${baseUrl}/api/v1/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ code: sandboxCode(name) }),
  });
  if (res.status !== 200) throw new Error(`login failed: ${res.status} ${await res.text()}`);
  return res.json();
}

export { sleep };
