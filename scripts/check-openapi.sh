#!/usr/bin/env bash
# Checks the OpenAPI document the service serves: validates it with openapi-spec-validator,
# then generates a typed TypeScript client from it (openapi-typescript) and type-checks a
# small program using that client (tests/openapi-client/main.ts) with `tsc --noEmit`.
# Installs what it needs (a Python venv, the npm packages pinned by package-lock.json);
# needs python3 and Node.js with npm. Runs on a clean checkout.
set -euo pipefail
cd "$(dirname "$0")/.."

work=$(mktemp -d)
server_pid=
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

echo "-- serving the document (sandbox mode, throwaway SQLite database)"
cargo build --locked -q --bin wechat-auth
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
WECHAT_SANDBOX=true BIND_ADDR="127.0.0.1:$port" DATABASE_URL="sqlite://$work/check.db?mode=rwc" \
  RUST_LOG=warn "${CARGO_TARGET_DIR:-target}/debug/wechat-auth" serve >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 100); do
  curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fsS "http://127.0.0.1:$port/api/openapi.json" -o "$work/openapi.json" \
  || { cat "$work/server.log" >&2; exit 1; }
kill "$server_pid"; server_pid=

echo "-- openapi-spec-validator"
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install -q --disable-pip-version-check 'openapi-spec-validator>=0.7,<0.8'
"$work/venv/bin/openapi-spec-validator" "$work/openapi.json"

echo "-- TypeScript client generated from the document, type-checked"
cd tests/openapi-client
npm ci --no-audit --no-fund --silent
OPENAPI_DOCUMENT="$work/openapi.json" npm run -s generate
npm run -s check
echo "OpenAPI document valid; generated client type-checks"
