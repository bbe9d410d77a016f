#!/usr/bin/env python3
"""Submits a CoreMachine job, follows its progress and prints the result or the field errors.

    python3 examples/python/submit_job.py hello_world --params '{"n": 3}'
    CM_URL=http://host:3000 CM_TOKEN=cm_... python3 examples/python/submit_job.py <type> --params '<json>'

Exit codes: 0 the job completed, 1 it did not (failed, cancelled) or the API refused it, 2 usage.
Standard library only (Python 3.9+).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coremachine import TERMINAL, ApiError, Client  # noqa: E402


def progress(job: dict) -> str:
    stages = job.get("stages") or []
    parts = []
    for s in stages:
        total = s.get("total") or 0
        done = (s.get("completed") or 0) + (s.get("failed") or 0)
        parts.append(f"{s.get('name')} {done}/{total}" if total else f"{s.get('name')} {s.get('status')}")
    return f"{job['status']:<10} " + ("  ".join(parts) if parts else "")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("type", help="job type (GET /api/v1/types lists them)")
    ap.add_argument("--params", default="{}", help="parameters as a JSON object")
    ap.add_argument("--url", default=os.environ.get("CM_URL", "http://127.0.0.1:3000"))
    ap.add_argument("--token", default=os.environ.get("CM_TOKEN"))
    args = ap.parse_args()
    try:
        params = json.loads(args.params)
    except ValueError as err:
        print(f"--params is not JSON: {err}", file=sys.stderr)
        return 2

    cm = Client(args.url, token=args.token)
    try:
        submitted = cm.submit(args.type, params)
    except ApiError as err:
        print(f"refused: {err.message}", file=sys.stderr)
        for issue in err.issues:
            print(f"  {issue['path']}: {issue['message']}", file=sys.stderr)
        return 1
    job_id = submitted["jobId"]
    print(f"job {job_id} {'(already submitted)' if submitted.get('idempotent') else 'submitted'}")

    job = None
    last = ""
    for job in cm.follow(job_id):
        line = progress(job)
        if line != last:
            print(line)
            last = line
    if job is None or job["status"] not in TERMINAL:
        job = cm.get(job_id)
    if job["status"] == "completed":
        print(json.dumps({"status": job["status"], "result": job.get("result")}, indent=2))
        return 0
    print(json.dumps({"status": job["status"], "error": job.get("error")}, indent=2), file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
