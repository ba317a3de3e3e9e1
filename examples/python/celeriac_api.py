"""A small client of celeriac's HTTP API, with Python's standard library only.

Celery's ``send_task(...)`` / ``AsyncResult(id).get()`` become ``enqueue(...)`` / ``wait(id)``.
Configure with CELERIAC_URL and CELERIAC_API_KEY.
"""
import json
import os
import time
import urllib.error
import urllib.request

FINAL = ("succeeded", "failed", "cancelled")


class CeleriacError(Exception):
    """An error answer of celeriac: its HTTP status and its error envelope."""

    def __init__(self, status, body):
        error = body.get("error", {})
        self.status = status
        self.code = error.get("code")
        self.issues = error.get("issues", [])
        self.body = body
        super().__init__(f"{status} {self.code}: {error.get('message')}")


class Celeriac:
    def __init__(self, url=None, api_key=None, timeout=10):
        self.url = (url or os.environ["CELERIAC_URL"]).rstrip("/")
        self.api_key = api_key or os.environ.get("CELERIAC_API_KEY", "")
        self.timeout = timeout

    def _call(self, method, path, body=None, headers=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Accept", "application/json")
        if self.api_key:
            request.add_header("Authorization", f"Bearer {self.api_key}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.load(response)
        except urllib.error.HTTPError as err:
            raise CeleriacError(err.code, json.load(err)) from None

    def enqueue(self, task, payload, idempotency_key=None, **options):
        """POST /v1/tasks/<task>. Options: delay, notBefore, retries, timeout, retryDelay."""
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        return self._call("POST", f"/v1/tasks/{task}", {"payload": payload, **options}, headers)

    def check_code(self, email, purpose, code):
        """POST /v1/verification/check: a code the person typed, for a signed token (once)."""
        return self._call("POST", "/v1/verification/check", {"email": email, "purpose": purpose, "code": code})

    def get(self, task_id):
        return self._call("GET", f"/v1/tasks/{task_id}")

    def wait(self, task_id, timeout=60, interval=0.5, on_progress=None):
        """Polls until the task is succeeded, failed or cancelled; returns its record."""
        deadline = time.monotonic() + timeout
        while True:
            record = self.get(task_id)
            if on_progress:
                on_progress(record)
            if record["state"] in FINAL:
                return record
            if time.monotonic() > deadline:
                raise TimeoutError(f"task {task_id} is still {record['state']} after {timeout} s")
            time.sleep(interval)
