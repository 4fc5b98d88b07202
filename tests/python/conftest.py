"""Shared fixtures for the conformance tests: they drive the real PyPI clients
against `stagelib service <name>` processes started here on loopback ports."""
import os
import subprocess
import tempfile
import time

import pytest

STAGELIB_BIN = os.environ.get("STAGELIB_BIN")


class Service:
    def __init__(self, name, proc, addr, data_dir, secret, user):
        self.name = name
        self.proc = proc
        self.addr = addr
        self.url = f"http://{addr}"
        self.data_dir = data_dir
        self.secret = secret
        self.user = user

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_service(name, *extra, data_dir=None, secret="test-secret", user="stagelib", timeout=20):
    """Start `stagelib service NAME` on a free loopback port and wait for its ready file."""
    if not STAGELIB_BIN:
        pytest.fail("STAGELIB_BIN is not set: run these tests through `cargo test --test conformance`")
    data_dir = data_dir or tempfile.mkdtemp(prefix=f"stagelib-{name}-")
    ready = os.path.join(data_dir, ".ready")
    if os.path.exists(ready):
        os.remove(ready)
    args = [STAGELIB_BIN, "service", name, "--listen", "127.0.0.1:0", "--data-dir", data_dir,
            "--ready-file", ready, "--secret", secret, "--user", user, *extra]
    log = open(os.path.join(tempfile.gettempdir(), f"stagelib-{name}-{os.getpid()}.log"), "ab")
    proc = subprocess.Popen(args, stdout=log, stderr=log)
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"stagelib service {name} exited with {proc.returncode}; see {log.name}")
        if os.path.exists(ready):
            with open(ready) as f:
                addr = f.read().strip()
            if addr:
                return Service(name, proc, addr, data_dir, secret, user)
        time.sleep(0.05)
    proc.kill()
    pytest.fail(f"stagelib service {name} did not become ready in {timeout}s")


@pytest.fixture
def service_factory():
    started = []

    def factory(name, *extra, **kw):
        svc = start_service(name, *extra, **kw)
        started.append(svc)
        return svc

    yield factory
    for svc in started:
        svc.stop()
