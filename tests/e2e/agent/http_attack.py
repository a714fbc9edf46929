#!/usr/bin/env python3
"""Attacks an HTTP endpoint the way a misbehaving local client would, and
measures whether the fast endpoints still answer.

  http_attack.py PORT [--slow N] [--long PATH --long-count K --expect-429]
                 [--fast PATH ...] [--rounds R] [--bound S]

1. N slowloris connections each send one header line per second, forever;
2. K long requests (e.g. /debug/pprof/profile?seconds=30) are started; with
   --expect-429 the last one must be answered 429 with Retry-After at once;
3. each fast path is fetched R times (fresh connection each time) and timed;
   every fetch must be 200 within BOUND seconds;
4. the slowloris connections must be closed by the server (its header
   deadline), not held: checked within --slow-close-within seconds.
Prints one line per measurement; exits 1 on the first violation.
"""
import argparse
import socket
import sys
import threading
import time


def slowloris(port, stop, closed, idx):
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(0.5)
    s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
    n = 0
    while not stop.is_set():
        try:
            s.sendall(b"X-Slow-%d: %d\r\n" % (idx, n))
        except OSError:
            closed[idx] = time.monotonic()
            return
        n += 1
        try:
            data = s.recv(4096)
            if data == b"" or data.startswith(b"HTTP/1.1 408"):
                closed[idx] = time.monotonic()
                return
        except socket.timeout:
            pass
        except OSError:
            closed[idx] = time.monotonic()
            return
        stop.wait(0.5)
    s.close()


def http_get(port, path, timeout):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    buf = b""
    while True:
        d = s.recv(65536)
        if not d:
            break
        buf += d
    s.close()
    head, _, body = buf.partition(b"\r\n\r\n")
    lines = head.decode(errors="replace").split("\r\n")
    status = int(lines[0].split()[1]) if lines and len(lines[0].split()) > 1 else 0
    headers = {l.split(":", 1)[0].lower(): l.split(":", 1)[1].strip() for l in lines[1:] if ":" in l}
    return status, headers, body


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    ap.add_argument("--slow", type=int, default=16)
    ap.add_argument("--long", default="")
    ap.add_argument("--long-count", type=int, default=0)
    ap.add_argument("--expect-429", action="store_true")
    ap.add_argument("--fast", action="append", default=[])
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--bound", type=float, default=1.0)
    ap.add_argument("--slow-close-within", type=float, default=30.0)
    a = ap.parse_args()

    stop = threading.Event()
    closed = {}
    threads = [threading.Thread(target=slowloris, args=(a.port, stop, closed, i), daemon=True) for i in range(a.slow)]
    t_attack = time.monotonic()
    for t in threads:
        t.start()
    time.sleep(1.5)  # the slow clients are connected and trickling

    long_results = []
    def long_req():
        try:
            long_results.append(http_get(a.port, a.long, 120))
        except OSError as e:
            long_results.append((0, {}, str(e).encode()))
    longs = []
    for i in range(a.long_count):
        t = threading.Thread(target=long_req, daemon=True)
        t.start()
        longs.append(t)
        time.sleep(0.3)  # in order: the last one is the one over the limit
    if a.expect_429:
        t0 = time.monotonic()
        longs[-1].join(10)
        if not long_results or long_results[0][0] != 429:
            print("FAIL: request %d over the long-request limit got %s, not 429" %
                  (a.long_count, long_results[0][0] if long_results else "no answer"))
            return 1
        if "retry-after" not in long_results[0][1]:
            print("FAIL: 429 without Retry-After")
            return 1
        print("ok: long request %d of %d answered 429 (Retry-After: %s) in %.3f s" %
              (a.long_count, a.long_count, long_results[0][1]["retry-after"], time.monotonic() - t0))

    worst = 0.0
    for path in a.fast:
        times = []
        for _ in range(a.rounds):
            t0 = time.monotonic()
            try:
                status, _, _ = http_get(a.port, path, a.bound * 5)
            except OSError as e:
                print("FAIL: %s: %s" % (path, e))
                return 1
            dt = time.monotonic() - t0
            times.append(dt)
            if status != 200:
                print("FAIL: %s answered %d under attack" % (path, status))
                return 1
        times.sort()
        worst = max(worst, times[-1])
        print("measured: %s under attack (%d slow clients, %d long requests): median %.1f ms, max %.1f ms over %d fetches" %
              (path, a.slow, a.long_count, 1000 * times[len(times) // 2], 1000 * times[-1], len(times)))
        if times[-1] > a.bound:
            print("FAIL: %s took %.3f s > %.1f s" % (path, times[-1], a.bound))
            return 1

    # The server must drop the slow clients at its header deadline.
    deadline = t_attack + a.slow_close_within
    while len(closed) < a.slow and time.monotonic() < deadline:
        time.sleep(0.2)
    stop.set()
    if len(closed) < a.slow:
        print("FAIL: %d of %d slow clients still connected after %.0f s" % (a.slow - len(closed), a.slow, a.slow_close_within))
        return 1
    print("measured: all %d slow clients closed by the server after at most %.1f s" %
          (a.slow, max(closed.values()) - t_attack))
    return 0


if __name__ == "__main__":
    sys.exit(main())
