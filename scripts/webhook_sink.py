#!/usr/bin/env python3
"""A fast webhook receiver for measuring delivery throughput (BENCHMARKS.md, events).

Answers every POST with 204 at once, counts distinct `webhook-id`s, and writes
"<distinct ids> <seconds since the first delivery>" to the file given, once a second and
at exit. Checks no signature: it stands in for a receiver, it does not test one.

    scripts/webhook_sink.py PORT COUNT_FILE
"""

import asyncio
import sys
import time

PORT = int(sys.argv[1])
COUNT_FILE = sys.argv[2]
seen = set()
first = None


async def handle(reader, writer):
    global first
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            webhook_id = None
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value.strip())
                elif name == b"webhook-id":
                    webhook_id = value.strip()
            if length:
                await reader.readexactly(length)
            if webhook_id is not None:
                if first is None:
                    first = time.monotonic()
                seen.add(webhook_id)
            writer.write(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
        pass
    finally:
        writer.close()


def report():
    elapsed = 0.0 if first is None else time.monotonic() - first
    with open(COUNT_FILE, "w") as out:
        out.write(f"{len(seen)} {elapsed:.3f}\n")


async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", PORT)
    async with server:
        while True:
            await asyncio.sleep(0.2)
            report()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        report()
