#!/usr/bin/env python3
"""WebSocket test peer for strait's end-to-end tests (websockets asyncio API).

Usage:
  ws_peer.py server --port P [--host 127.0.0.1] [--no-compression]
      Echo server: every text message is echoed as text, every binary message
      as binary, byte-exactly, on any request path. Prints "READY <port>"
      (flushed) on stdout once listening; with P = 0 an ephemeral port is
      bound and the real one is printed. Logs one line per connection (path)
      to stderr. Exits 0 on SIGTERM or SIGINT, and on its own when its parent
      process dies or after --max-lifetime seconds.

  ws_peer.py client --url ws://127.0.0.1:P/path [--count N] [--size BYTES]
                    [--timeout S] [--no-compression] [--header NAME:VALUE ...]
      Sends N text and N binary messages of SIZE bytes, alternating and in
      lock-step (send one, wait for its echo), checks each echo's type and
      content byte-exactly, then closes cleanly (1000). Prints exactly one
      JSON line on stdout; exits 0 on success, 1 on any failure.
"""

import argparse
import asyncio
import inspect
import json
import os
import random
import signal
import sys
import time

from websockets.asyncio.client import connect
from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed, ConnectionClosedOK

try:  # websockets >= 14
    from websockets.version import version as WS_VERSION
except ImportError:  # pragma: no cover
    WS_VERSION = "?"


def _close_info(ws):
    """(code, reason) of the closing handshake; Connection.close_code only
    exists from websockets 15, the sans-I/O protocol has it in 14 too."""
    proto = ws.protocol
    return proto.close_code, proto.close_reason


def log(msg):
    print(f"ws_peer: {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# server
# --------------------------------------------------------------------------


async def _echo(ws):
    path = ws.request.path if ws.request is not None else "?"
    log(f"connection path={path}")
    try:
        async for msg in ws:  # str for text frames, bytes for binary frames
            await ws.send(msg)
    except ConnectionClosedOK:
        pass
    except ConnectionClosed as e:
        log(f"connection path={path} closed abnormally: {e}")
        return
    log(f"connection path={path} closed: {_close_info(ws)[0]}")


async def _watchdog(stop, max_lifetime):
    parent = os.getppid()
    started = time.monotonic()
    while not stop.is_set():
        await asyncio.sleep(0.5)
        if os.getppid() != parent:
            log("parent process exited, shutting down")
            stop.set()
        elif max_lifetime > 0 and time.monotonic() - started > max_lifetime:
            log(f"max lifetime {max_lifetime}s reached, shutting down")
            stop.set()


async def run_server(args):
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    try:
        server = await serve(
            _echo,
            args.host,
            args.port,
            compression=None if args.no_compression else "deflate",
            max_size=None,
            ping_interval=None,  # no unsolicited traffic on the wire
            close_timeout=2,
        )
    except OSError as e:
        log(f"cannot bind {args.host}:{args.port}: {e}")
        return 1
    async with server:
        port = server.sockets[0].getsockname()[1]
        print(f"READY {port}", flush=True)
        watchdog = asyncio.create_task(_watchdog(stop, args.max_lifetime))
        await stop.wait()
        watchdog.cancel()
        server.close()  # closes open connections with 1001 (going away)
        try:
            await asyncio.wait_for(server.wait_closed(), 5)
        except asyncio.TimeoutError:
            log("timed out closing connections")
    return 0


# --------------------------------------------------------------------------
# client
# --------------------------------------------------------------------------

# Mix of 1-, 2- and 3-byte UTF-8 characters, so text frames exercise
# multi-byte sequences (and any split of them across TCP segments / frames).
_TEXT_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 éü€"


def _text_payload(rng, size):
    """A str whose UTF-8 encoding is exactly `size` bytes."""
    out, n = [], 0
    while n < size:
        ch = rng.choice(_TEXT_ALPHABET)
        w = len(ch.encode())
        if n + w > size:
            ch, w = "x", 1
        out.append(ch)
        n += w
    return "".join(out)


def _connect_kwargs(args, headers):
    kwargs = dict(
        compression=None if args.no_compression else "deflate",
        additional_headers=headers or None,
        open_timeout=args.timeout,
        close_timeout=args.timeout,
        ping_interval=None,
        max_size=None,
    )
    # websockets >= 15 honours http(s)_proxy / all_proxy from the environment
    # by default; the test must talk to the URL it was given.
    if "proxy" in inspect.signature(connect.__init__).parameters:
        kwargs["proxy"] = None
    return kwargs


async def _exchange(args, headers, summary):
    rng = random.Random(0x5753)
    async with connect(args.url, **_connect_kwargs(args, headers)) as ws:
        for i in range(args.count):
            for kind in ("text", "binary"):
                if kind == "text":
                    msg = _text_payload(rng, args.size)
                else:
                    msg = rng.randbytes(args.size)
                await asyncio.wait_for(ws.send(msg), args.timeout)
                echo = await asyncio.wait_for(ws.recv(), args.timeout)
                if type(echo) is not type(msg):
                    summary["error"] = (
                        f"{kind} message {i}: echo came back as "
                        f"{'text' if isinstance(echo, str) else 'binary'}"
                    )
                    return False
                if echo != msg:
                    summary["error"] = f"{kind} message {i}: echo does not match"
                    return False
                summary[kind] += 1
        await asyncio.wait_for(ws.close(), args.timeout + 1)
        code, reason = _close_info(ws)
        summary["close_code"] = code
        if code != 1000:
            summary["error"] = f"unclean close: code {code} {reason!r}"
            return False
    return True


async def run_client(args):
    headers = []
    for h in args.header:
        name, sep, value = h.partition(":")
        if not sep:
            print(f"bad --header {h!r}: expected NAME:VALUE", file=sys.stderr)
            return 2
        headers.append((name.strip(), value.strip()))

    summary = {"ok": False, "url": args.url, "text": 0, "binary": 0,
               "messages": 0, "close_code": None}
    started = time.monotonic()
    try:
        ok = await _exchange(args, headers, summary)
    except asyncio.TimeoutError:
        ok = False
        summary["error"] = f"timed out after {args.timeout}s waiting for the peer"
    except ConnectionClosedOK as e:
        ok = False
        summary["error"] = f"connection closed early: {e}"
    except ConnectionClosed as e:
        ok = False
        summary["error"] = f"connection closed abnormally: {e}"
    except Exception as e:  # handshake rejected, refused, DNS, ...
        ok = False
        summary["error"] = f"{type(e).__name__}: {e}"
    summary["ok"] = ok
    summary["messages"] = summary["text"] + summary["binary"]
    summary["elapsed_ms"] = round((time.monotonic() - started) * 1000)
    print(json.dumps(summary), flush=True)
    return 0 if ok else 1


# --------------------------------------------------------------------------


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="mode", required=True)

    s = sub.add_parser("server", help="echo server")
    s.add_argument("--port", type=int, required=True, help="0 = ephemeral")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--no-compression", action="store_true",
                   help="do not negotiate permessage-deflate")
    s.add_argument("--max-lifetime", type=float, default=600.0,
                   help="exit after this many seconds (0 = never); default 600")

    c = sub.add_parser("client", help="echo client")
    c.add_argument("--url", required=True, help="ws://host:port/path")
    c.add_argument("--count", type=int, default=50,
                   help="text messages and binary messages each (default 50)")
    c.add_argument("--size", type=int, default=100, help="bytes per message (default 100)")
    c.add_argument("--timeout", type=float, default=10.0,
                   help="timeout for open, each send/recv and close, s (default 10)")
    c.add_argument("--no-compression", action="store_true",
                   help="do not offer permessage-deflate")
    c.add_argument("--header", action="append", default=[],
                   help="extra handshake header NAME:VALUE (repeatable)")

    args = p.parse_args()
    runner = run_server if args.mode == "server" else run_client
    return asyncio.run(runner(args))


if __name__ == "__main__":
    sys.exit(main())
