"""Running the control plane with uvicorn, in the foreground (`annoray up`) or in a thread."""

from __future__ import annotations

import random
import socket
import threading
import time
from pathlib import Path
from types import TracebackType

import uvicorn
from fastapi import FastAPI


def free_port(host: str = "127.0.0.1") -> int:
    """A port free on ``host`` now, for a server that binds it later: in this process, or in another one seconds later
    (after it starts Ray, or initdb). Picked between Ray's worker ports (10002-19999) and the kernel's ephemeral range,
    where no outgoing connection can take it meanwhile (one did once, and a second `annoray up` on the same port found it
    in use); the kernel picks when that stretch has no free port."""
    try:
        ephemeral = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except OSError:  # not Linux: 32768 is at or below the start of the usual ranges
        ephemeral = 32768
    ports = range(20000, ephemeral)
    for port in [*random.sample(ports, min(200, len(ports))), 0]:
        with socket.socket() as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
            return s.getsockname()[1]
    raise RuntimeError(f"no free port on {host}")


class BackgroundServer:
    """uvicorn serving an app on a thread, for the quickstart and tests: ``with BackgroundServer(app) as url``."""

    def __init__(self, app: FastAPI, *, host: str = "127.0.0.1", port: int | None = None):
        self.host, self.port = host, port or free_port(host)
        self.server = uvicorn.Server(uvicorn.Config(app, host=self.host, port=self.port, log_level="warning", lifespan="on",
                                                   proxy_headers=False))  # the app trusts its own proxies
        self.thread = threading.Thread(target=self.server.run, name="annoray-api", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the API did not start on {self.url}")
            time.sleep(0.02)
        return self.url

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
