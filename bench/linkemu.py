#!/usr/bin/env python3
"""A link emulator for benchmarks: a TCP relay on loopback that delays every byte by a
one-way delay in both directions (so a 100 ms round trip is --delay-ms 50) and can cap
the bandwidth. Uploads then run "over" a slow link on one machine.

    linkemu.py --listen PORT --target HOST:PORT --delay-ms 50 [--mbit 20]

As a library: start_relay(target_port, delay_ms, mbit) -> (port, stop)."""
import argparse
import asyncio
import threading
import time


async def _pipe(reader, writer, delay_s, bytes_per_s):
    queue = asyncio.Queue()

    async def pump_in():
        while True:
            data = await reader.read(65536)
            await queue.put((time.monotonic() + delay_s, data))
            if not data:
                return

    async def pump_out():
        next_free = 0.0
        while True:
            due, data = await queue.get()
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            if not data:
                try:
                    writer.write_eof()
                except (OSError, RuntimeError):
                    pass
                return
            if bytes_per_s:
                now = time.monotonic()
                start = max(now, next_free)
                next_free = start + len(data) / bytes_per_s
                if start > now:
                    await asyncio.sleep(start - now)
            writer.write(data)
            try:
                await writer.drain()
            except OSError:
                return

    await asyncio.gather(pump_in(), pump_out(), return_exceptions=True)


async def _serve(listen_port, target, delay_ms, mbit, started, stop_event):
    delay_s = delay_ms / 1000.0
    rate = mbit * 1e6 / 8 if mbit else 0

    async def handle(cr, cw):
        try:
            sr, sw = await asyncio.open_connection(*target)
        except OSError:
            cw.close()
            return
        await asyncio.gather(_pipe(cr, sw, delay_s, rate), _pipe(sr, cw, delay_s, rate),
                             return_exceptions=True)
        for w in (cw, sw):
            w.close()

    server = await asyncio.start_server(handle, "127.0.0.1", listen_port)
    started.append(server.sockets[0].getsockname()[1])
    async with server:
        while not stop_event.is_set():
            await asyncio.sleep(0.05)


def start_relay(target_port, delay_ms, mbit=0.0):
    """Run a relay in a background thread; returns (its port, a stop function)."""
    started, stop_event = [], threading.Event()
    t = threading.Thread(target=lambda: asyncio.run(
        _serve(0, ("127.0.0.1", target_port), delay_ms, mbit, started, stop_event)),
        daemon=True)
    t.start()
    while not started:
        time.sleep(0.01)

    def stop():
        stop_event.set()
        t.join(5)
    return started[0], stop


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--listen", type=int, required=True, help="port to listen on (127.0.0.1)")
    ap.add_argument("--target", required=True, help="HOST:PORT to relay to")
    ap.add_argument("--delay-ms", type=float, default=0, help="one-way delay in ms")
    ap.add_argument("--mbit", type=float, default=0, help="bandwidth cap in Mbit/s (0: none)")
    a = ap.parse_args()
    host, port = a.target.rsplit(":", 1)
    started = []
    asyncio.run(_serve(a.listen, (host, int(port)), a.delay_ms, a.mbit, started,
                       threading.Event()))


if __name__ == "__main__":
    main()
