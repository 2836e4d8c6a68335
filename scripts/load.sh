#!/usr/bin/env bash
# Load test: the release service under wrk, logging in against a fast local fake WeChat
# (examples/fake_wechat.rs), next to a bare poem endpoint that verifies the same JWT
# (examples/ceiling.rs) as the ceiling for /api/v1/me. Everything runs on this machine and
# talks over loopback only.
#
# usage: scripts/load.sh [sqlite|postgres|mysql ...]          (default: sqlite)
#
# env:   DURATION=10        seconds per scenario
#        CONNECTIONS=64 THREADS=2
#        USERS=256          logged-in users whose tokens /me, phone and refresh cycle through
#        SCENARIOS="me ceiling phone login login_new refresh weblogin webflow"
#        SKIP_BUILD=1       use the binaries already in target/release
#        PORT_BASE=18080    service; +1 fake WeChat; +2 ceiling
#        PG_URL=postgres://postgres@127.0.0.1:5432  MYSQL_URL=mysql://root@127.0.0.1:3306
#        PERF_DIR=dir       also sample the process under test with `perf record` (cpu-clock,
#                           DWARF call graphs) into dir/<scenario>.data; costs throughput
#
# stdout: one markdown table row per scenario. stderr: progress. Logs stay in $KEEP_DIR if
# set, else in a temporary directory removed at exit.
#
# Columns: req/s; p50/p99 latency (wrk --latency, corrected for coordinated omission);
# non-2xx answers and socket errors/timeouts; peak RSS (VmHWM, reset before each scenario
# through /proc/PID/clear_refs) of the process under test; CPU use during the run in % of
# ONE core for the process under test, the database server, the load generator (wrk and
# the fake WeChat), and everything else on the machine ("other" > ~10 means someone else
# was busy: repeat the run).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
USERS=${USERS:-256}
SCENARIOS=${SCENARIOS:-me ceiling phone login login_new refresh weblogin webflow}
PORT_BASE=${PORT_BASE:-18080}
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432}
MYSQL_URL=${MYSQL_URL:-mysql://root@127.0.0.1:3306}
BACKENDS=("$@")
[ ${#BACKENDS[@]} -gt 0 ] || BACKENDS=(sqlite)

SERVICE_PORT=$PORT_BASE
FAKE_PORT=$((PORT_BASE + 1))
CEILING_PORT=$((PORT_BASE + 2))
APPID=wxbench0123456789a
JWT_SECRET=bench-jwt-secret-0123456789abcdef0123
RUN=$(date +%s)

log() { printf '[load] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

[ "$USERS" -ge "$CONNECTIONS" ] || die "USERS must be >= CONNECTIONS (refresh chains)"
for backend in "${BACKENDS[@]}"; do
  case $backend in sqlite | postgres | mysql) ;; *) die "unknown backend $backend" ;; esac
done

WORK=${KEEP_DIR:-$(mktemp -d /tmp/wechat-auth-load.XXXXXX)}
mkdir -p "$WORK"
PIDS=()
DATABASES=() # "kind name"

cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  done
  local entry
  for entry in "${DATABASES[@]}"; do drop_database $entry || true; done
  [ -n "${KEEP_DIR:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- tools and binaries ----------------------------------------------------------------

if ! command -v wrk >/dev/null; then
  log "installing wrk"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi
if [ -z "${SKIP_BUILD:-}" ]; then
  log "building release binaries"
  timeout 1800 cargo build --release --bin wechat-auth \
    --example fake_wechat --example ceiling --example loadgen_payloads \
    --example loadgen_web_flow >&2
fi
BIN=$ROOT/target/release
for binary in wechat-auth examples/fake_wechat examples/ceiling examples/loadgen_payloads \
  examples/loadgen_web_flow; do
  [ -x "$BIN/$binary" ] || die "$BIN/$binary is missing (run without SKIP_BUILD)"
done

# --- helpers ----------------------------------------------------------------------------

wait_http() { # URL: up to 15 s
  for _ in $(seq 150); do
    curl -fsS -o /dev/null --max-time 1 "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

mysql_cli() { # SQL
  [[ $MYSQL_URL =~ ^mysql://([^:@/]+)(:([^@/]*))?@([^:/]+)(:([0-9]+))?/?$ ]] ||
    die "MYSQL_URL must look like mysql://user[:password]@host[:port]"
  MYSQL_PWD=${BASH_REMATCH[3]} timeout 30 mysql -h "${BASH_REMATCH[4]}" \
    -P "${BASH_REMATCH[6]:-3306}" -u "${BASH_REMATCH[1]}" -e "$1"
}

create_database() { # KIND -> sets DB_URL (no subshell: cleanup must see DATABASES)
  local name="wa_load_${RUN}_$1"
  case $1 in
    sqlite) DB_URL="sqlite://$WORK/$name.db?mode=rwc" ;;
    postgres)
      DATABASES+=("postgres $name")
      timeout 30 psql "$PG_URL/postgres" -qAtc "CREATE DATABASE $name" >&2
      DB_URL="$PG_URL/$name"
      ;;
    mysql)
      DATABASES+=("mysql $name")
      mysql_cli "CREATE DATABASE $name" >&2
      DB_URL="$MYSQL_URL/$name"
      ;;
  esac
}

drop_database() { # KIND NAME
  case $1 in
    postgres) timeout 30 psql "$PG_URL/postgres" -qAtc "DROP DATABASE IF EXISTS $2 WITH (FORCE)" >/dev/null 2>&1 ;;
    mysql) mysql_cli "DROP DATABASE IF EXISTS $2" >/dev/null 2>&1 ;;
  esac
}

cpu_ticks() { # PID... -> utime+stime of these processes, in clock ticks
  local total=0 pid fields
  for pid in "$@"; do
    fields=$(cut -d' ' -f14,15 "/proc/$pid/stat" 2>/dev/null) || continue
    total=$((total + ${fields% *} + ${fields#* }))
  done
  echo "$total"
}
machine_ticks() { awk '/^cpu /{print $2+$3+$4+$7+$8+$9}' /proc/stat; }
db_pids() {
  case $1 in
    postgres) pgrep -x postgres || true ;;
    mysql) pgrep -x 'mariadbd|mysqld' || true ;;
  esac
}

start_fake() {
  "$BIN/examples/fake_wechat" --port "$FAKE_PORT" --appid "$APPID" >"$WORK/fake.log" 2>&1 &
  FAKE_PID=$!
  PIDS+=("$FAKE_PID")
  wait_http "http://127.0.0.1:$FAKE_PORT/sns/jscode2session?js_code=probe" || die "fake WeChat did not start"
}

start_ceiling() {
  JWT_SECRET=$JWT_SECRET "$BIN/examples/ceiling" --port "$CEILING_PORT" >"$WORK/ceiling.log" 2>&1 &
  CEILING_PID=$!
  PIDS+=("$CEILING_PID")
  for _ in $(seq 150); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$CEILING_PORT/api/v1/me")" = 401 ] && return 0
    sleep 0.1
  done
  die "ceiling did not start"
}

start_service() { # DATABASE_URL LOGFILE
  env BIND_ADDR="127.0.0.1:$SERVICE_PORT" WECHAT_APPID=$APPID WECHAT_SECRET=bench-appsecret \
    JWT_SECRET=$JWT_SECRET WECHAT_API_BASE="http://127.0.0.1:$FAKE_PORT" DATABASE_URL="$1" \
    WECHAT_WEB_APPID=wxbenchweb012345678 WECHAT_WEB_SECRET=bench-web-secret \
    PUBLIC_BASE_URL="http://127.0.0.1:$SERVICE_PORT" WEB_RETURN_URLS="http://127.0.0.1:$SERVICE_PORT/" \
    WECHAT_OPEN_BASE="http://127.0.0.1:$FAKE_PORT" RATE_LIMIT_PER_MIN=0 RUST_LOG=warn \
    "$BIN/wechat-auth" >"$2" 2>&1 &
  SERVICE_PID=$!
  PIDS+=("$SERVICE_PID")
  wait_http "http://127.0.0.1:$SERVICE_PORT/healthz" || die "service did not start: $(tail -5 "$2")"
}

stop_pid() {
  kill "$1" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$1" 2>/dev/null || true
}

# run_wrk BACKEND LABEL PID URL SCRIPT ARGS...: one scenario, one table row.
run_wrk() {
  local backend=$1 label=$2 pid=$3 url=$4 script=$5
  shift 5
  echo 5 >"/proc/$pid/clear_refs" 2>/dev/null || log "cannot reset VmHWM of $pid (not root?)"
  local out dbp
  out="$WORK/wrk-$(tr -cs 'a-zA-Z0-9' '_' <<<"$backend-$label").txt"
  dbp=$(db_pids "$backend")
  local t0 s0 d0 f0
  t0=$(machine_ticks); s0=$(cpu_ticks "$pid"); d0=$(cpu_ticks $dbp); f0=$(cpu_ticks "$FAKE_PID")
  local perf_pid=""
  if [ -n "${PERF_DIR:-}" ]; then
    mkdir -p "$PERF_DIR"
    perf record -q -e cpu-clock -F 499 --call-graph dwarf,16384 -p "$pid" \
      -o "$PERF_DIR/$(basename "$out" .txt).data" -- sleep "$DURATION" >/dev/null 2>&1 &
    perf_pid=$!
  fi
  local TIMEFORMAT='%U %S'
  if [ "$script" = webflow ]; then
    # Three requests per sign-in with a cookie in between: wrk can't chain them.
    { time timeout $((DURATION + 60)) "$BIN/examples/loadgen_web_flow" --base "${url%/api/v1*}" \
        --return-to "${url%/api/v1*}/" --connections "$CONNECTIONS" --seconds "$DURATION" \
        --run "$1" >"$out" 2>&1; } 2>"$out.time" || log "loadgen failed for $label: $(tail -3 "$out")"
  else
    { time timeout $((DURATION + 60)) wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" \
        --timeout 5s --latency -s "$ROOT/scripts/wrk/$script" "$url" -- "$@" >"$out" 2>&1; } \
      2>"$out.time" || log "wrk failed for $label: $(tail -3 "$out")"
  fi
  [ -z "$perf_pid" ] || wait "$perf_pid" || log "perf record failed for $label"
  local t1 s1 d1 f1
  t1=$(machine_ticks); s1=$(cpu_ticks "$pid"); d1=$(cpu_ticks $dbp); f1=$(cpu_ticks "$FAKE_PID")
  local hwm result
  hwm=$(awk '/^VmHWM/{print $2}' "/proc/$pid/status")
  result=$(grep '^RESULT' "$out" || true)
  [ -n "$result" ] || { log "no result for $label: $(tail -5 "$out")"; return 0; }
  val() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$result"; }
  local secs wrk_ticks
  secs=$(val seconds)
  wrk_ticks=$(awk '{printf "%d", ($1 + $2) * 100}' "$out.time")
  awk -v b="$backend" -v l="$label" -v rps="$(val rps)" -v p50="$(val p50_ms)" \
    -v p99="$(val p99_ms)" -v non2xx="$(val non2xx)" -v sock="$(val socket_errors)" \
    -v tmo="$(val timeouts)" -v hwm="$hwm" -v secs="$secs" \
    -v svc=$((s1 - s0)) -v db=$((d1 - d0)) -v gen=$((f1 - f0 + wrk_ticks)) -v all=$((t1 - t0)) '
    BEGIN {
      other = all - svc - db - gen; if (other < 0) other = 0
      if (b == "none") b = "—"
      pct = 100 / secs / 100   # ticks (1/100 s) -> % of one core
      printf "| %s | %s | %.0f | %.2f | %.2f | %d / %d | %.1f | %.0f / %.0f / %.0f / %.0f |\n",
        b, l, rps, p50, p99, non2xx, sock + tmo, hwm / 1024,
        svc * pct, db * pct, gen * pct, other * pct
    }'
}

# --- run --------------------------------------------------------------------------------

log "machine: $(nproc) cores, $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r); wrk $(wrk -v 2>&1 | awk 'NR==1{print $2}')"
log "load: ${CONNECTIONS} connections, ${THREADS} wrk threads, ${DURATION} s per scenario"
start_fake
start_ceiling

echo "| backend | scenario | req/s | p50 ms | p99 ms | non-2xx / errors | peak RSS MiB | CPU % svc / db / loadgen / other |"
echo "|---|---|---:|---:|---:|---:|---:|---|"
ceiling_done=""
for backend in "${BACKENDS[@]}"; do
  create_database "$backend"
  log "$backend: starting the service"
  start_service "$DB_URL" "$WORK/service-$backend.log"
  inputs="$WORK/inputs-$backend"
  timeout 120 "$BIN/examples/loadgen_payloads" --base "http://127.0.0.1:$SERVICE_PORT" \
    --appid "$APPID" --out "$inputs" --users "$USERS" >&2 || die "preparing inputs failed"
  api="http://127.0.0.1:$SERVICE_PORT/api/v1"
  for scenario in $SCENARIOS; do
    log "$backend: $scenario"
    case $scenario in
      me) run_wrk "$backend" "GET /me" "$SERVICE_PID" "$api/me" me.lua "$inputs/tokens.txt" ;;
      ceiling)
        [ -z "$ceiling_done" ] || continue
        ceiling_done=1
        run_wrk none "ceiling (bare poem + JWT)" "$CEILING_PID" \
          "http://127.0.0.1:$CEILING_PORT/api/v1/me" me.lua "$inputs/tokens.txt"
        ;;
      phone) run_wrk "$backend" "phone decrypt" "$SERVICE_PID" "$api/wechat/phone-number" \
        phone.lua "$inputs/phone.txt" ;;
      login) run_wrk "$backend" "login (returning user)" "$SERVICE_PID" "$api/auth/login" \
        login.lua returning 250 "$RUN" ;;
      login_new) run_wrk "$backend" "login (new user)" "$SERVICE_PID" "$api/auth/login" \
        login.lua new 0 "$RUN" ;;
      refresh) run_wrk "$backend" "refresh (rotation chains)" "$SERVICE_PID" "$api/auth/refresh" \
        refresh.lua "$inputs/refresh.txt" "$THREADS" ;;
      weblogin) run_wrk "$backend" "web login (new user)" "$SERVICE_PID" "$api/auth/web/login" \
        weblogin.lua "$RUN" ;;
      webflow) run_wrk "$backend" "web redirect flow (3 requests, new user)" "$SERVICE_PID" \
        "$api" webflow "$RUN" ;;
      *) die "unknown scenario $scenario" ;;
    esac
  done
  stop_pid "$SERVICE_PID"
  if grep -qiE 'error|panic' "$WORK/service-$backend.log"; then
    log "$backend: the service logged errors:"
    grep -iE 'error|panic' "$WORK/service-$backend.log" | sort | uniq -c | head -5 >&2
  fi
done
