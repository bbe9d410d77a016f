"""A small CoreMachine client for the REST API (/api/v1), standard library only.

    from coremachine import Client, ApiError
    cm = Client("http://127.0.0.1:3000", token="cm_...")
    job = cm.submit("hello_world", {"n": 3})
    for state in cm.follow(job["jobId"]):
        print(state["status"])

The API is described by GET /api/v1/openapi.json (OpenAPI 3.1).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Iterator, Optional

TERMINAL = ("completed", "completed_with_errors", "failed", "cancelled")


class ApiError(Exception):
    """An error answer: HTTP status, code, message and the field errors (``issues``)."""

    def __init__(self, status: int, body: dict[str, Any]):
        self.status = status
        self.code = body.get("code", "")
        self.message = body.get("message") or body.get("description") or ""
        self.cm_code = body.get("cmCode")
        self.issues: list[dict[str, str]] = body.get("issues") or []
        super().__init__(f"{status} {self.code}: {self.message}")


class Client:
    def __init__(self, base_url: str, token: Optional[str] = None, timeout: float = 30.0):
        self.base = base_url.rstrip("/") + "/api/v1"
        self.token = token
        self.timeout = timeout

    def _request(self, method: str, path: str, body: Any = None, query: Optional[dict[str, Any]] = None):
        url = self.base + path
        if query:
            url += "?" + urllib.parse.urlencode({k: v for k, v in query.items() if v is not None})
        data = None if body is None else json.dumps(body).encode("utf-8")
        headers = {"accept": "application/json"}
        if data is not None:
            headers["content-type"] = "application/json"
        if self.token:
            headers["authorization"] = f"Bearer {self.token}"
        return urllib.request.Request(url, data=data, method=method, headers=headers)

    def _call(self, method: str, path: str, body: Any = None, query: Optional[dict[str, Any]] = None) -> Any:
        req = self._request(method, path, body, query)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as res:
                return json.loads(res.read().decode("utf-8"))
        except urllib.error.HTTPError as err:
            raw = err.read().decode("utf-8", "replace")
            try:
                parsed = json.loads(raw)
            except ValueError:
                parsed = {"code": "HTTP_ERROR", "message": raw[:200]}
            raise ApiError(err.code, parsed) from None

    # --- the jobs API -------------------------------------------------------------------------

    def types(self) -> list[dict[str, Any]]:
        return self._call("GET", "/types")

    def submit(self, job_type: str, params: Optional[dict[str, Any]] = None) -> dict[str, Any]:
        """Submits a job; the same parameters again return the same job (``idempotent: true``)."""
        return self._call("POST", "/jobs", {"type": job_type, "params": params or {}})

    def get(self, job_id: str) -> dict[str, Any]:
        return self._call("GET", f"/jobs/{job_id}")

    def list(self, **filters: Any) -> dict[str, Any]:
        """One page of jobs (status=, type=, createdAfter=, limit=, cursor=); ``nextCursor`` pages on."""
        return self._call("GET", "/jobs", query=filters)

    def tasks(self, job_id: str, **filters: Any) -> dict[str, Any]:
        return self._call("GET", f"/jobs/{job_id}/tasks", query=filters)

    def events(self, job_id: str, after_id: int = 0) -> list[dict[str, Any]]:
        return self._call("GET", f"/jobs/{job_id}/events", query={"afterId": after_id})

    def cancel(self, job_id: str) -> dict[str, Any]:
        return self._call("POST", f"/jobs/{job_id}/cancel")

    def retry(self, job_id: str) -> dict[str, Any]:
        return self._call("POST", f"/jobs/{job_id}/retry")

    def follow(self, job_id: str) -> Iterator[dict[str, Any]]:
        """Yields the job each time it changes (server-sent events), until it settles."""
        req = self._request("GET", f"/jobs/{job_id}/stream")
        req.add_header("accept", "text/event-stream")
        try:
            res = urllib.request.urlopen(req, timeout=max(self.timeout, 60))
        except urllib.error.HTTPError as err:
            raise ApiError(err.code, json.loads(err.read().decode("utf-8") or "{}")) from None
        with res:
            event, data = "message", []
            for raw in res:
                line = raw.decode("utf-8").rstrip("\r\n")
                if line.startswith(":"):
                    continue
                if line == "":
                    if data:
                        payload = json.loads("\n".join(data))
                        if event == "job":
                            yield payload
                        elif event == "error":
                            raise ApiError(500, payload)
                        elif event == "end":
                            return
                    event, data = "message", []
                elif line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].lstrip())
