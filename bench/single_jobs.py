#!/usr/bin/env python3
"""Single-job latency of a running receipt service (ours or the Node seed:
both answer `POST /api/upload` with a `jobId` and `GET /api/job/{id}` with
a `state`): upload one file, poll until the job is final, then the next,
so every job meets an idle service.

Per job: `e2e` = upload request start -> the poll that first sees it
completed (polled every POLL_MS, 2 ms by default, on one kept-alive
connection), `upload` = the upload request alone; and from BullMQ's own
job hash in Redis (when QUEUE_KEY names it, `<prefix>:<queue>`): `pickup` =
processedOn - timestamp (added -> a worker took it) and `process` =
finishedOn - processedOn (the worker's handler), to the millisecond.
With --metrics (our service), the per-stage time from
`receipt_ocr_stage_duration_seconds` (mean ms per job over the run).

With --pids (comma-separated), the CPU those processes and their reaped
children (the seed's tesseract runs) used per job, from /proc: steadier
than wall time on a busy machine.

With --cli instead of --url: the plain `tesseract IMG stdout` command
(OMP_THREAD_LIMIT=1), run to completion once per job, as the seed's worker
runs it: the ceiling any service around it can reach.

Prints one JSON line (p50/min/max in ms). Standard library only.

Usage: single_jobs.py (--url URL | --cli) --file IMG [--jobs 20] [--warmup 3]
       [--queue-key bull:QUEUE] [--metrics] [--label NAME]
"""

import argparse
import http.client
import json
import os
import re
import statistics
import subprocess
import sys
import time
import urllib.parse
import uuid

POLL_S = float(os.environ.get("POLL_MS", "2")) / 1000


def upload(conn, path):
    """POST the file as multipart field `file`; the job id answered."""
    boundary = uuid.uuid4().hex
    with open(path, "rb") as f:
        data = f.read()
    name = os.path.basename(path)
    ctype = "image/png" if name.endswith(".png") else "image/jpeg"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        f"Content-Type: {ctype}\r\n\r\n"
    ).encode() + data + f"\r\n--{boundary}--\r\n".encode()
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    conn.request("POST", "/api/upload", body=body, headers=headers)
    response = conn.getresponse()
    answer = response.read()
    if response.status >= 300:
        sys.exit(f"upload answered {response.status}: {answer[:300]!r}")
    return json.loads(answer)["jobId"]


def wait_final(conn, job_id):
    """Poll until the job is completed (its answer) or failed (exit)."""
    while True:
        conn.request("GET", f"/api/job/{urllib.parse.quote(job_id)}")
        response = conn.getresponse()
        answer = response.read()
        if response.status == 200:
            state = json.loads(answer).get("state")
            if state == "completed":
                return
            if state == "failed":
                sys.exit(f"job {job_id} failed: {answer[:300]!r}")
        time.sleep(POLL_S)


def bullmq_times(queue_key, job_id):
    """(pickup ms, process ms) from the job's hash in Redis."""
    out = subprocess.run(
        ["redis-cli", "-h", "127.0.0.1", "hmget", f"{queue_key}:{job_id}",
         "timestamp", "processedOn", "finishedOn"],
        capture_output=True, text=True, check=True,
    ).stdout.split()
    if len(out) != 3 or not all(v.isdigit() for v in out):
        return None
    added, processed, finished = map(int, out)
    return processed - added, finished - processed


STAGE = re.compile(r'receipt_ocr_stage_duration_seconds_(sum|count)\{stage="(\w+)"\} (\S+)')


def stage_totals(base):
    """{stage: (seconds, count)} from the service's /metrics."""
    host = urllib.parse.urlsplit(base).netloc
    conn = http.client.HTTPConnection(host, timeout=10)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    totals = {}
    for kind, stage, value in STAGE.findall(text):
        s, n = totals.get(stage, (0.0, 0.0))
        totals[stage] = (s + float(value), n) if kind == "sum" else (s, n + float(value))
    return totals


def cpu_seconds(pids):
    """utime + stime + cutime + cstime of `pids`, in seconds."""
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += sum(int(v) for v in fields[11:15])
    return total / os.sysconf("SC_CLK_TCK")


def summary(values):
    if not values:
        return None
    return {
        "p50": round(statistics.median(values), 1),
        "min": round(min(values), 1),
        "max": round(max(values), 1),
    }


def run_one(conn, path, queue_key):
    start = time.perf_counter()
    job_id = upload(conn, path)
    uploaded = time.perf_counter()
    wait_final(conn, job_id)
    done = time.perf_counter()
    times = bullmq_times(queue_key, job_id) if queue_key else None
    return (done - start) * 1000, (uploaded - start) * 1000, times


def run_cli(path):
    env = dict(os.environ, OMP_THREAD_LIMIT="1")
    start = time.perf_counter()
    subprocess.run(["tesseract", path, "stdout"], env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return (time.perf_counter() - start) * 1000, 0.0, None


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--url")
    p.add_argument("--cli", action="store_true")
    p.add_argument("--file", required=True)
    p.add_argument("--jobs", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--queue-key")
    p.add_argument("--metrics", action="store_true")
    p.add_argument("--label", default="")
    p.add_argument("--pids", default="")
    args = p.parse_args()
    if args.cli:
        job = lambda queue_key: run_cli(args.file)  # noqa: E731
    else:
        conn = http.client.HTTPConnection(urllib.parse.urlsplit(args.url).netloc, timeout=60)
        job = lambda queue_key: run_one(conn, args.file, queue_key)  # noqa: E731
    for _ in range(args.warmup):
        job(None)
    before = stage_totals(args.url) if args.metrics else None
    pids = [int(p) for p in args.pids.split(",") if p]
    if args.cli:
        pids = [os.getpid()]
    cpu_before = cpu_seconds(pids)
    load_start = os.getloadavg()[0]
    e2e, up, pickup, process = [], [], [], []
    for _ in range(args.jobs):
        total, upload_ms, times = job(args.queue_key)
        e2e.append(total)
        up.append(upload_ms)
        if times:
            pickup.append(times[0])
            process.append(times[1])
    line = {
        "label": args.label,
        "file": os.path.basename(args.file),
        "jobs": args.jobs,
        "e2e_ms": summary(e2e),
        "upload_ms": None if args.cli else summary(up),
        "pickup_ms": summary(pickup),
        "process_ms": summary(process),
        "cpu_ms_per_job": round((cpu_seconds(pids) - cpu_before) * 1000 / args.jobs, 1) if pids else None,
        "poll_ms": POLL_S * 1000,
        "loadavg_1m": [round(load_start, 2), round(os.getloadavg()[0], 2)],
    }
    if before is not None:
        after = stage_totals(args.url)
        line["stage_ms_per_job"] = {
            stage: round((s - before.get(stage, (0, 0))[0]) * 1000 / args.jobs, 1)
            for stage, (s, _) in sorted(after.items())
        }
    print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
