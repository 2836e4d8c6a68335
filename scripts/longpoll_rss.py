#!/usr/bin/env python3
"""How much memory one instance needs to hold N computer sign-ins long-polling at once.

Starts the service (the binary given, in the sandbox, on a fresh SQLite file), starts N
sign-ins, opens N connections that each long-poll one of them (wait=30), and reads the
service's resident set size (VmRSS from /proc) before and while they all wait. Then checks
the service still answers at once and that a confirm still wakes its poll. Bounded: one
pass of about a minute; not a load test (the polls are idle while they wait).

    ulimit -n 20000; scripts/longpoll_rss.py target/release/wechat-auth 10000 [RAMP]

RAMP (default 250) polls start every 100 ms; RAMP=10000 starts them all at once.
"""

import asyncio
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

BINARY = sys.argv[1] if len(sys.argv) > 1 else "target/release/wechat-auth"
COUNT = int(sys.argv[2]) if len(sys.argv) > 2 else 10_000
RAMP = int(sys.argv[3]) if len(sys.argv) > 3 else 250
HOST = "127.0.0.1"


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def call(port, method, path, body=None, token=None):
    conn = http.client.HTTPConnection(HOST, port, timeout=10)
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, json.loads(data) if data else None


async def long_poll(port, sign_in, ready):
    reader, writer = await asyncio.open_connection(HOST, port)
    writer.write(
        f"GET /api/v1/qr-login/{sign_in['id']}?wait=30&secret={sign_in['secret']} HTTP/1.1\r\n"
        f"Host: {HOST}\r\n\r\n".encode()
    )
    await writer.drain()
    ready.append(1)
    head = await reader.readuntil(b"\r\n\r\n")
    writer.close()
    return head.split(b"\r\n", 1)[0]


async def main():
    port = free_port()
    workdir = tempfile.mkdtemp()
    env = dict(
        os.environ,
        BIND_ADDR=f"{HOST}:{port}",
        WECHAT_SANDBOX="true",
        DATABASE_URL=f"sqlite://{workdir}/longpoll.db?mode=rwc",
        RATE_LIMIT_PER_MIN="0",
        QR_LOGIN_TTL_SECS="600",
        RUST_LOG="warn",
    )
    service = subprocess.Popen([BINARY], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                if call(port, "GET", "/healthz")[0] == 200:
                    break
            except OSError:
                time.sleep(0.1)
        # Keep-alive connection for the starts, so they do not cost a connection each.
        starter = http.client.HTTPConnection(HOST, port, timeout=10)
        sign_ins = []
        for _ in range(COUNT):
            starter.request("POST", "/api/v1/qr-login")
            response = starter.getresponse()
            sign_ins.append(json.loads(response.read()))
        starter.close()
        idle = rss_mb(service.pid)

        ready = []
        polls = []
        # Computers arrive over a few seconds, not in one instant: RAMP per 100 ms.
        for first in range(0, COUNT, RAMP):
            polls += [asyncio.create_task(long_poll(port, s, ready)) for s in sign_ins[first:first + RAMP]]
            await asyncio.sleep(0.1)
        while len(ready) < COUNT:
            await asyncio.sleep(0.2)
        await asyncio.sleep(3)  # every request parsed and waiting
        waiting = rss_mb(service.pid)

        started = time.monotonic()
        status, _ = call(port, "GET", "/healthz")
        healthz_ms = (time.monotonic() - started) * 1000

        # A confirm still wakes its poll at once while all the others wait.
        _, login = call(port, "POST", "/api/v1/auth/login", {"code": "bench-1"})
        token = login["access_token"]
        first = sign_ins[0]["id"]
        started = time.monotonic()
        call(port, "POST", f"/api/v1/qr-login/{first}/scan", token=token)
        answered = await asyncio.wait_for(polls[0], timeout=30)
        woke_ms = (time.monotonic() - started) * 1000
        peak = rss_mb(service.pid)
        for poll in polls[1:]:
            poll.cancel()
        print(json.dumps({
            "long_polls": COUNT,
            "rss_mb_before_polls": round(idle, 1),
            "rss_mb_while_waiting": round(waiting, 1),
            "rss_mb_peak": round(peak, 1),
            "healthz_status": status,
            "healthz_ms_while_waiting": round(healthz_ms, 1),
            "scan_woke_poll_ms": round(woke_ms, 1),
            "woken_poll_answer": answered.decode(),
        }, indent=2))
    finally:
        service.terminate()
        service.wait(timeout=15)


asyncio.run(main())
