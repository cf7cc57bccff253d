#!/usr/bin/env python3
"""Measure how fast receipt-ocr tells clients: webhook delivery latency and
live-event (SSE) latency, on a fresh `receipt-ocr serve` started here.

- Webhooks: WEBHOOK_URLS points at a receiver on 127.0.0.1 run by this
  script (it checks every signature). Latency = arrival at the receiver -
  the job's completion, taken two ways: the payload's `timestamp` (when the
  result was committed with its delivery) and BullMQ's `finishedOn` (when
  the job entered `completed`; read from Redis).
- Events: one SSE stream per job (`GET /api/job/{id}/events`). Latency =
  arrival of an update at the client - its Redis stream entry's time (the
  SSE `id` is `<unix ms>-<n>`, stamped by Redis when the worker wrote it).

Prints p50/p99 of each, one JSON line each, then a summary. Standard
library only. The run gets its own database, queue and blob directory,
removed afterwards.

Usage: SAMPLE=receipt.jpg [JOBS=200] [BIN=target/.../receipt-ocr] bench/live_latency.py
"""

import base64
import datetime
import hashlib
import hmac
import http.client
import http.server
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid

JOBS = int(os.environ.get("JOBS", "200"))
SAMPLE = os.environ.get("SAMPLE") or sys.exit("set SAMPLE to a receipt image")
TARGET = os.environ.get("CARGO_TARGET_DIR", "/var/tmp/receipt-ocr-target")
BIN = os.environ.get("BIN", os.path.join(TARGET, "release", "receipt-ocr"))
PORT = int(os.environ.get("PORT", "4300"))
REDIS = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379")
PG = os.environ.get("PG_BASE", "postgres://postgres@127.0.0.1:5432")
KEY = secrets.token_bytes(32)
SECRET = "whsec_" + base64.b64encode(KEY).decode()

webhooks = []  # (arrival, body)
bad_signatures = []
lock = threading.Lock()


class Receiver(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        arrived = time.time()
        body = self.rfile.read(int(self.headers["content-length"]))
        signed = f"{self.headers['webhook-id']}.{self.headers['webhook-timestamp']}.".encode() + body
        expected = "v1," + base64.b64encode(hmac.new(KEY, signed, hashlib.sha256).digest()).decode()
        with lock:
            if expected not in self.headers.get("webhook-signature", "").split(" "):
                bad_signatures.append(self.headers["webhook-id"])
            webhooks.append((arrived, json.loads(body)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def summary(label, values_ms):
    line = {
        "label": label,
        "n": len(values_ms),
        "p50_ms": round(percentile(values_ms, 50), 1),
        "p99_ms": round(percentile(values_ms, 99), 1),
        "max_ms": round(max(values_ms), 1),
        "mean_ms": round(statistics.mean(values_ms), 1),
    }
    print(json.dumps(line), flush=True)
    return line


def upload(image):
    boundary = uuid.uuid4().hex
    body = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"r.jpg\"\r\n"
        f"Content-Type: application/octet-stream\r\n\r\n"
    ).encode() + image + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{PORT}/api/upload",
        data=body,
        headers={"content-type": f"multipart/form-data; boundary={boundary}"},
    )
    with urllib.request.urlopen(request) as response:
        return json.load(response)["jobId"]


def follow(job_id, sink):
    """Read one job's SSE stream to its end; record (entry ms, arrival)."""
    connection = http.client.HTTPConnection("127.0.0.1", PORT, timeout=600)
    connection.request("GET", f"/api/job/{job_id}/events")
    response = connection.getresponse()
    event_id = None
    for raw in response:
        line = raw.decode().rstrip("\n")
        if line.startswith("id:"):
            event_id = line[3:].strip()
        elif line == "" and event_id:
            sink.append((int(event_id.split("-")[0]), time.time()))
            event_id = None
    connection.close()


def unix_time(rfc3339_utc):
    """`2026-12-02T10:00:00.123456789Z` (chrono's form) as Unix seconds."""
    whole, _, fraction = rfc3339_utc.rstrip("Z").partition(".")
    seconds = datetime.datetime.strptime(whole, "%Y-%m-%dT%H:%M:%S")
    seconds = seconds.replace(tzinfo=datetime.timezone.utc).timestamp()
    return seconds + (float("0." + fraction) if fraction else 0.0)


def redis_cli(*args):
    return subprocess.run(["redis-cli", "-u", REDIS, *args], capture_output=True, text=True).stdout


def main():
    name = f"bench_live_{int(time.time())}"
    blobs = tempfile.mkdtemp(prefix="receipt-ocr-live-")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = dict(
        os.environ,
        DATABASE_URL=f"{PG}/{name}",
        REDIS_URL=REDIS,
        QUEUE_NAME=name,
        BLOB_STORE=blobs,
        PORT=str(PORT),
        HOST="127.0.0.1",
        OCR_CONCURRENCY="2",
        OCR_RATE_MAX="0",
        OMP_THREAD_LIMIT="1",
        RUST_LOG="warn",
        WEBHOOK_URLS=f"http://127.0.0.1:{server.server_address[1]}/hook",
        WEBHOOK_ALLOW_PRIVATE="true",
        WEBHOOK_SECRET=SECRET,
    )
    service = subprocess.Popen([BIN, "serve"], env=env)
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{PORT}/health/ready")
                break
            except OSError:
                time.sleep(0.1)
        image = open(SAMPLE, "rb").read()
        events, followers = [], []
        started = time.time()
        for _ in range(JOBS):
            job_id = upload(image)
            follower = threading.Thread(target=follow, args=(job_id, events), daemon=True)
            follower.start()
            followers.append((job_id, follower))
        while len(webhooks) < JOBS and time.time() - started < 3600:
            time.sleep(0.2)
        for _, follower in followers:
            follower.join(timeout=60)
        kinds = {}
        for _, body in webhooks:
            kinds[body["type"]] = kinds.get(body["type"], 0) + 1
        print(f"# {JOBS} jobs in {time.time() - started:.0f} s; webhooks {kinds}, "
              f"{len(bad_signatures)} bad signatures; {len(events)} SSE events; "
              f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)
        from_commit = []
        from_finished = []
        for arrived, body in webhooks:
            from_commit.append((arrived - unix_time(body["timestamp"])) * 1000)
            key = f"bull:{name}:{body['data']['jobId']}"
            finished = redis_cli("HGET", key, "finishedOn").strip()
            if finished:
                from_finished.append(arrived * 1000 - int(finished))
        summary("webhook latency from the committed result (payload timestamp)", from_commit)
        if from_finished:
            summary("webhook latency from BullMQ finishedOn", from_finished)
        summary("SSE event latency from the worker's XADD", [arrived * 1000 - entry for entry, arrived in events])
    finally:
        service.terminate()
        service.wait(timeout=120)
        server.shutdown()
        keys = redis_cli("--scan", "--pattern", f"bull:{name}*").split()
        for start in range(0, len(keys), 500):
            redis_cli("DEL", *keys[start:start + 500])
        subprocess.run(["psql", f"{PG}/postgres", "-qc", f'drop database if exists "{name}"'],
                       capture_output=True)
        shutil.rmtree(blobs, ignore_errors=True)


if __name__ == "__main__":
    main()
