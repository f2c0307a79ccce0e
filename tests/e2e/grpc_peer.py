#!/usr/bin/env python3
"""gRPC test peer for strait's end-to-end tests.

No protoc / generated stubs: the service is registered with grpcio's generic
handlers and every message is raw bytes (no serializer / deserializer, i.e.
identity on bytes).

Service ``strait.test.Echo``:
  * ``Unary``  (unary-unary)   -> b"echo:" + request
  * ``Bidi``   (stream-stream) -> b"echo:" + msg for every request msg, in order
  * ``Fail``   (unary-unary)   -> aborts with PERMISSION_DENIED, details "nope"

Usage:
  grpc_peer.py server --port P [--host 127.0.0.1]
      Prints "READY <port>" (flushed) on stdout once listening; with P = 0 an
      ephemeral port is bound and the real one is printed. Exits 0 on SIGTERM
      or SIGINT, and on its own when its parent process dies or after
      --max-lifetime seconds (so a crashed test never leaks a server).

  grpc_peer.py client --target 127.0.0.1:P --call unary|bidi|fail
                      [--count N] [--size BYTES] [--window W] [--timeout S]
                      [--authority HOST] [--header NAME:VALUE ...]
      Plaintext HTTP/2 (h2c prior knowledge). Prints exactly one JSON line on
      stdout and exits 0 on success, 1 on an RPC error or a mismatched reply.
"""

import argparse
import json
import os
import random
import signal
import sys
import threading
import time
from concurrent import futures

import grpc

SERVICE = "strait.test.Echo"
PREFIX = b"echo:"
UNLIMITED = -1

# Never go through an http(s)_proxy from the environment, and never share a
# fixed port with another server via SO_REUSEPORT.
COMMON_OPTIONS = [
    ("grpc.max_receive_message_length", UNLIMITED),
    ("grpc.max_send_message_length", UNLIMITED),
]
SERVER_OPTIONS = COMMON_OPTIONS + [("grpc.so_reuseport", 0)]
CLIENT_OPTIONS = COMMON_OPTIONS + [("grpc.enable_http_proxy", 0)]


def log(msg):
    print(f"grpc_peer: {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# server
# --------------------------------------------------------------------------


def _unary(request, context):
    return PREFIX + request


def _bidi(request_iterator, context):
    for msg in request_iterator:
        yield PREFIX + msg


def _fail(request, context):
    context.abort(grpc.StatusCode.PERMISSION_DENIED, "nope")


def _start_watchdog(stop, max_lifetime):
    """Set `stop` when the parent dies or the lifetime cap is reached."""
    parent = os.getppid()
    started = time.monotonic()

    def watch():
        while not stop.wait(0.5):
            if os.getppid() != parent:
                log("parent process exited, shutting down")
                stop.set()
            elif max_lifetime > 0 and time.monotonic() - started > max_lifetime:
                log(f"max lifetime {max_lifetime}s reached, shutting down")
                stop.set()

    threading.Thread(target=watch, name="watchdog", daemon=True).start()


def run_server(args):
    stop = threading.Event()

    def on_signal(signum, _frame):
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    handler = grpc.method_handlers_generic_handler(
        SERVICE,
        {
            # request_deserializer / response_serializer default to None:
            # identity on bytes.
            "Unary": grpc.unary_unary_rpc_method_handler(_unary),
            "Bidi": grpc.stream_stream_rpc_method_handler(_bidi),
            "Fail": grpc.unary_unary_rpc_method_handler(_fail),
        },
    )
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=args.workers),
        handlers=[handler],
        options=SERVER_OPTIONS,
    )
    try:
        port = server.add_insecure_port(f"{args.host}:{args.port}")
    except RuntimeError as e:  # grpcio >= 1.50 raises instead of returning 0
        log(f"cannot bind {args.host}:{args.port}: {e}")
        return 1
    if port == 0:
        log(f"cannot bind {args.host}:{args.port}")
        return 1
    server.start()
    print(f"READY {port}", flush=True)

    _start_watchdog(stop, args.max_lifetime)
    while not stop.wait(1.0):
        pass
    server.stop(grace=1.0).wait(5.0)
    return 0


# --------------------------------------------------------------------------
# client
# --------------------------------------------------------------------------


def _payload(rng, size):
    return rng.randbytes(size)


def _call_bidi(channel, args, metadata, summary):
    method = channel.stream_stream(f"/{SERVICE}/Bidi")
    rng = random.Random(0x5742)
    sent = []  # payloads in send order, for checking the replies
    # Lock-step flow control between the request generator (run on a grpc
    # thread) and the reply loop below: at most `window` messages in flight.
    window = args.window if args.window > 0 else args.count
    credits = threading.Semaphore(window)
    done = threading.Event()
    deadline = time.monotonic() + args.timeout

    def requests():
        for _ in range(args.count):
            # Bounded wait: never block a grpc thread past the deadline.
            while not credits.acquire(timeout=0.2):
                if done.is_set() or time.monotonic() > deadline:
                    return
            if done.is_set():
                return
            msg = _payload(rng, args.size)
            sent.append(msg)
            yield msg

    call = method(requests(), timeout=args.timeout, metadata=metadata)
    received = 0
    try:
        for reply in call:
            if received >= len(sent) or reply != PREFIX + sent[received]:
                summary["error"] = f"reply {received} does not match request {received}"
                call.cancel()
                return False
            received += 1
            credits.release()
        if received != args.count:
            summary["error"] = f"stream ended after {received} of {args.count} replies"
            return False
        return True
    finally:
        done.set()
        summary["messages"] = received


def run_client(args):
    metadata = []
    for h in args.header:
        name, sep, value = h.partition(":")
        if not sep:
            print(f"bad --header {h!r}: expected NAME:VALUE", file=sys.stderr)
            return 2
        metadata.append((name.strip().lower(), value.strip()))
    options = list(CLIENT_OPTIONS)
    if args.authority:
        options.append(("grpc.default_authority", args.authority))

    summary = {"ok": False, "call": args.call, "messages": 0, "code": "OK"}
    started = time.monotonic()
    try:
        with grpc.insecure_channel(args.target, options=options) as channel:
            if args.call == "bidi":
                ok = _call_bidi(channel, args, metadata, summary)
            else:
                method = "Unary" if args.call == "unary" else "Fail"
                call = channel.unary_unary(f"/{SERVICE}/{method}")
                req = _payload(random.Random(0x5742), args.size)
                reply = call(req, timeout=args.timeout, metadata=metadata)
                summary["messages"] = 1
                ok = reply == PREFIX + req
                if not ok:
                    summary["error"] = "reply does not match request"
    except grpc.RpcError as e:
        ok = False
        code = e.code() if hasattr(e, "code") else grpc.StatusCode.UNKNOWN
        summary["code"] = code.name if code is not None else "UNKNOWN"
        summary["details"] = (e.details() if hasattr(e, "details") else str(e)) or ""
    summary["ok"] = ok
    summary["elapsed_ms"] = round((time.monotonic() - started) * 1000)
    print(json.dumps(summary), flush=True)
    return 0 if ok else 1


# --------------------------------------------------------------------------


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="mode", required=True)

    s = sub.add_parser("server", help="serve strait.test.Echo")
    s.add_argument("--port", type=int, required=True, help="0 = ephemeral")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--workers", type=int, default=16, help="handler threads")
    s.add_argument("--max-lifetime", type=float, default=600.0,
                   help="exit after this many seconds (0 = never); default 600")

    c = sub.add_parser("client", help="call strait.test.Echo")
    c.add_argument("--target", required=True, help="host:port (h2c)")
    c.add_argument("--call", required=True, choices=["unary", "bidi", "fail"])
    c.add_argument("--count", type=int, default=50, help="bidi messages (default 50)")
    c.add_argument("--size", type=int, default=100, help="bytes per message (default 100)")
    c.add_argument("--window", type=int, default=1,
                   help="bidi messages in flight (default 1 = strict lock-step; 0 = all)")
    c.add_argument("--timeout", type=float, default=10.0, help="deadline per call, s")
    c.add_argument("--authority", default=None, help="override :authority")
    c.add_argument("--header", action="append", default=[],
                   help="extra request metadata NAME:VALUE (repeatable)")

    args = p.parse_args()
    if args.mode == "server":
        return run_server(args)
    return run_client(args)


if __name__ == "__main__":
    sys.exit(main())
