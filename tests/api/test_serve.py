"""`optiinfra-store serve` as a real process: the README's curl examples against it, a clean stop
on SIGTERM with a stream open, and the embedded demo with its tokens."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from optiinfra_store.api.auth import TokenVerifier, Unauthenticated
from tests.api.conftest import JWT_SECRET, TECHSTART
from tests.pg import free_port

README = Path(__file__).resolve().parents[2] / "README.md"
CLI = [sys.executable, "-m", "optiinfra_store.commands.cli"]


def cli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPTIINFRA_")}
    return {**env, **extra}


@contextmanager
def serving(args: list[str], env: dict[str, str], port: int, timeout: float = 60) -> Iterator[subprocess.Popen]:
    process = subprocess.Popen(
        [*CLI, "serve", "--port", str(port), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + timeout
        while True:
            assert process.poll() is None, process.communicate()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "serve did not answer"
            time.sleep(0.1)
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def stop(process: subprocess.Popen) -> tuple[str, str]:
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=20)
    assert process.returncode == 0, err
    return out, err


def readme_curls() -> list[str]:
    block = next(b for b in re.findall(r"```sh\n(.*?)```", README.read_text(), re.S) if "curl" in b)
    return [line for line in block.splitlines() if line.startswith("curl")]


def test_serve__the_readme_examples_and_a_clean_stop_on_sigterm(api_dsn, seeded):
    port = free_port()
    env = cli_env(OPTIINFRA_JWT_SECRET=JWT_SECRET)
    token = subprocess.run(
        [*CLI, "token", "--customer", TECHSTART, "--subject", "ci"], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()
    with serving(["--dsn", api_dsn], env, port) as process:
        shell = {**env, "TOKEN": token, "URL": f"http://127.0.0.1:{port}"}
        answers = {}
        stream = None
        for line in readme_curls():
            if "/events" in line:
                stream = subprocess.Popen(["bash", "-c", line], env=shell, stdout=subprocess.PIPE, text=True)
                continue
            done = subprocess.run(["bash", "-c", line], env=shell, capture_output=True, text=True, timeout=30)
            assert done.returncode == 0, (line, done.stderr)
            answers[line] = json.loads(done.stdout)
        history, details, stats, perf, typed, trend = answers.values()
        assert sorted(i["status"] for i in history["items"]) == ["completed", "failed"]
        assert details["status"] == "failed" and details["transitions"] and details["steps"]
        assert stats["total"] == 2 and perf["tips"] and typed["items"][0]["workflow_type"] == "scaling_decision"
        assert len(trend["buckets"]) == 7
        scrape = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10)  # no token
        assert scrape.status_code == 200 and TECHSTART not in scrape.text
        details_route = 'route="/api/workflows/{execution_id}/details",status="200"} 1.0'
        assert f'optiinfra_http_requests_total{{method="GET",{details_route}' in scrape.text
        assert stream is not None
        time.sleep(0.5)
        out, err = stop(process)  # with the stream still open
        assert stream.wait(timeout=10) == 0 and stream.stdout.read().startswith("retry:")
    log = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    routes = {entry["route"] for entry in log}
    assert "/api/workflows/{execution_id}/details" in routes and "/api/workflows/events" in routes
    assert all(entry["customer_id"] in (None, TECHSTART) for entry in log)
    assert token not in err and token not in out


def test_serve__the_embedded_demo_hands_out_a_token_per_customer(tmp_path):
    pytest.importorskip("pgserver")
    port = free_port()
    env = cli_env(OPTIINFRA_JWT_SECRET=JWT_SECRET)  # the demo must not sign with the service's secret
    with serving(["--data-dir", str(tmp_path / "pg")], env, port, timeout=120) as process:
        customers = httpx.get(f"http://127.0.0.1:{port}/api/demo/customers").json()
        assert {c["name"] for c in customers} == {"Acme Corp", "TechStart Inc"}
        for customer in customers:
            me = httpx.get(f"http://127.0.0.1:{port}/api/me", headers={"Authorization": f"Bearer {customer['token']}"})
            assert me.json()["customer_id"] == customer["customer_id"]
        out, err = stop(process)
    assert f"http://127.0.0.1:{port}/" in out
    assert all(c["token"] in out for c in customers)
    service = TokenVerifier.hs256(JWT_SECRET)
    for customer in customers:
        with pytest.raises(Unauthenticated):
            service.verify(f"Bearer {customer['token']}")
    assert "Warning" not in err and "Traceback" not in err


def test_serve__the_demo_refuses_a_public_address_and_a_service_refuses_to_start_without_a_key(api_dsn):
    refused = subprocess.run([*CLI, "serve", "--host", "0.0.0.0"], env=cli_env(), capture_output=True, text=True)
    assert refused.returncode == 1 and "loopback" in refused.stderr
    keyless = subprocess.run(
        [*CLI, "serve", "--dsn", api_dsn, "--port", str(free_port())], env=cli_env(), capture_output=True, text=True
    )
    assert keyless.returncode == 1 and "OPTIINFRA_JWT_SECRET" in keyless.stderr
    assert "Traceback" not in keyless.stderr


def test_serve__without_a_key_names_the_database_where_it_came_from_and_what_to_set():
    """An exported OPTIINFRA_DATABASE_URL turns `serve` from the demo into the service, which needs a key."""
    dsn = "postgresql://ops:hunter2@db.example:5432/optiinfra"
    shown = "postgresql://ops:***@db.example:5432/optiinfra"
    for args, env, source in (
        ([], cli_env(OPTIINFRA_DATABASE_URL=dsn), "$OPTIINFRA_DATABASE_URL"),
        (["--dsn", dsn], cli_env(), "--dsn"),
    ):
        done = subprocess.run([*CLI, "serve", *args], env=env, capture_output=True, text=True)
        assert (done.returncode, done.stdout) == (1, "")
        assert done.stderr == (
            f"optiinfra-store serve: error: cannot serve {shown} (from {source}; without a DSN, serve runs the "
            "embedded demo): no way to check tokens: set OPTIINFRA_JWT_SECRET (HS256, at least 32 bytes) or "
            "OPTIINFRA_JWT_PUBLIC_KEY (a PEM file with an RSA or P-256 public key)\n"
        )


def test_serve__quiet_prints_nothing_and_logs_no_requests(api_dsn):
    port = free_port()
    with serving(["-q", "--dsn", api_dsn], cli_env(OPTIINFRA_JWT_SECRET=JWT_SECRET), port) as process:
        assert httpx.get(f"http://127.0.0.1:{port}/api/me").status_code == 401
        assert stop(process) == ("", "")


def test_token__a_ttl_beyond_the_maximum_lifetime_is_refused():
    args = [*CLI, "token", "--customer", TECHSTART, "--ttl", str(24 * 3600 + 1)]
    refused = subprocess.run(args, env=cli_env(OPTIINFRA_JWT_SECRET=JWT_SECRET), capture_output=True, text=True)
    assert refused.returncode != 0 and refused.stdout == ""
    assert "--ttl must be at most 86400 seconds" in refused.stderr and "OPTIINFRA_JWT_MAX_LIFETIME" in refused.stderr
    longer = cli_env(OPTIINFRA_JWT_SECRET=JWT_SECRET, OPTIINFRA_JWT_MAX_LIFETIME=str(2 * 24 * 3600))
    issued = subprocess.run(args, env=longer, capture_output=True, text=True, check=True).stdout.strip()
    service = TokenVerifier.from_env(longer)
    assert str(service.verify(f"Bearer {issued}").customer_id) == TECHSTART


def test_serve__no_metrics_leaves_the_scrape_out(api_dsn):
    port = free_port()
    with serving(["--dsn", api_dsn, "--no-metrics"], cli_env(OPTIINFRA_JWT_SECRET=JWT_SECRET), port) as process:
        assert httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).status_code == 404
        stop(process)
