"""A TCP proxy that delays every byte by a fixed time in each direction: a WAN link.

Run as ``python -m ops.bench.latency --upstream HOST:PORT --delay-ms D``; it
prints ``port N`` once it listens on 127.0.0.1:N. Each chunk read from one side
is written to the other ``D`` ms after it was read, in order, so a round trip
costs 2 x D and bandwidth is not limited (a queue of at most 16 MiB per
direction and connection pushes back on a faster sender). HTTP passes through
untouched: the Host header names the proxy, so a registry's Location headers
point back at it. :class:`LatencyProxy` starts and stops one from Python.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

CHUNK = 64 * 1024
QUEUE_CHUNKS = 256
ROOT = Path(__file__).resolve().parents[2]


async def _carry(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    """Copy reader to writer, each chunk ``delay`` seconds after it arrived."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue(QUEUE_CHUNKS)

    async def read() -> None:
        try:
            while data := await reader.read(CHUNK):
                await queue.put((loop.time() + delay, data))
        except (ConnectionError, OSError):
            pass
        await queue.put((loop.time() + delay, b""))

    reading = asyncio.create_task(read())
    try:
        while True:
            at, data = await queue.get()
            wait = at - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if not data:
                if writer.can_write_eof():
                    writer.write_eof()
                break
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        reading.cancel()


async def _serve(upstream: str, delay: float) -> None:
    host, port = upstream.rsplit(":", 1)

    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            up_r, up_w = await asyncio.open_connection(host, int(port))
        except OSError:
            client_w.close()
            return
        await asyncio.gather(_carry(client_r, up_w, delay), _carry(up_r, client_w, delay))
        for w in (client_w, up_w):
            w.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=512)
    print(f"port {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


class LatencyProxy:
    """One proxy process in front of ``upstream`` (host:port), adding ``rtt_ms`` per round
    trip; ``url`` is where clients go instead."""

    def __init__(self, upstream: str, rtt_ms: float) -> None:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ops.bench.latency",
                "--upstream",
                upstream,
                "--delay-ms",
                str(rtt_ms / 2),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline().split()
        self.port = int(line[1])
        self.host = f"127.0.0.1:{self.port}"
        self.url = f"http://{self.host}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            self.process.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--delay-ms", type=float, required=True)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    asyncio.run(_serve(args.upstream, args.delay_ms / 1000))


if __name__ == "__main__":
    main()
