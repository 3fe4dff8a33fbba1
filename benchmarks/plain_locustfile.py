"""The baseline for ``bench_load_gate.py``: plain Locust, one endpoint, nothing else.

No profile, no plan, no pacing, no client ids, no success rule beyond Locust's
own (status < 400): what ``locust --headless`` does on its own, so the gate's
locustfile can be compared with it on the same endpoint in the same run.
"""

from __future__ import annotations

import os

from locust import FastHttpUser, constant, task

#: The endpoint both locustfiles hit.
PATH = os.environ.get("OBSCONFORM_BENCH_PATH", "/health")


class PlainUser(FastHttpUser):
    wait_time = constant(0)

    @task
    def get(self) -> None:
        self.client.get(PATH, name="health_check")
