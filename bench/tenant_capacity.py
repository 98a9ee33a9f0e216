"""How many tenants' assistants one Rasa process holds, and what a cold tenant's first turn costs.

    python -m bench.tenant_capacity [--tenants 40] [--archive models/northwind.tar.gz]

Starts one Rasa server with the gateway channel (as the stack does), gives each of N tenants its own
copy of a trained archive (its own agent: domain, policies, classifier head; the frozen encoder is one
shared ONNX session, as for every probe-first tenant), points each tenant's ``production.json`` at it,
and then, tenant by tenant, times the first turn (cold: the agent is loaded) and a second one (warm)
and reads the process's resident memory. Writes ``bench/results/tenant_capacity.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import httpx

from gateway.settings import PROJECT_ROOT
from gateway.rasa_cli import RASA_BIN, rasa_cli_env
from gateway.stack import free_port

RESULTS = PROJECT_ROOT / "bench" / "results"
BUDGET_MB = 4096.0


def rss_mb(pid: int) -> float:
    """Resident memory of a process in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return 0.0


def start_rasa(archive: Path, registry: Path, token: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    """A Rasa server with the gateway channel, an in-memory tracker store and a large agent budget."""
    endpoints = registry.parent / "endpoints.yml"
    endpoints.write_text("action_endpoint:\n  url: http://127.0.0.1:9/webhook\n")  # no action runs for a greeting
    env = {**rasa_cli_env(), "SWITCHBOARD_RASA_TOKEN": token, "SWITCHBOARD_MODEL_REGISTRY_DIR": str(registry),
           "SWITCHBOARD_RASA_AGENT_BUDGET_MB": str(10 * BUDGET_MB)}
    return subprocess.Popen([str(RASA_BIN), "run", "--model", str(archive), "--enable-api", f"--auth-token={token}",
                             "--interface", "127.0.0.1", "--port", str(port), "--endpoints", str(endpoints),
                             "--credentials", str(PROJECT_ROOT / "bot" / "credentials.yml")],
                            cwd=PROJECT_ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def wait_ready(url: str, token: str, process: subprocess.Popen[bytes], timeout_s: float = 300) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("Rasa exited during start-up")
        try:
            if httpx.get(f"{url}/status", params={"token": token}, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise RuntimeError("Rasa did not start in time")


def turn(client: httpx.Client, tenant: str, sender: str) -> float:
    """One greeting turn of ``tenant``; its latency in ms."""
    started = time.perf_counter()
    response = client.post("/webhooks/gateway/webhook", json={"sender": sender, "message": "hello",
                                                              "metadata": {"tenant_id": tenant}})
    elapsed = (time.perf_counter() - started) * 1000
    if response.status_code != 200 or not response.json().get("messages"):
        raise RuntimeError(f"{tenant}: HTTP {response.status_code} {response.text[:200]}")
    return elapsed


def run(tenants: int, archive: Path) -> dict[str, object]:
    """Load ``tenants`` tenants one by one; memory and latency after each."""
    token = secrets.token_urlsafe(16)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="switchboard-capacity-") as tmp:
        registry = Path(tmp) / "models"
        for n in range(tenants):
            folder = registry / f"tenant{n:03d}"
            folder.mkdir(parents=True)
            shutil.copy2(archive, folder / "v1.tar.gz")
            (folder / "production.json").write_text(json.dumps({"model_file": str(folder / "v1.tar.gz")}))
        process = start_rasa(archive, registry, token, port, Path(tmp) / "rasa.log")
        rows: list[dict[str, float]] = []
        try:
            wait_ready(url, token, process)
            base = rss_mb(process.pid)
            print(f"Rasa up: {base:.0f} MB resident with the start-up model", flush=True)
            with httpx.Client(base_url=url, timeout=300, headers={"Authorization": f"Bearer {token}"}) as client:
                for n in range(tenants):
                    tenant = f"tenant{n:03d}"
                    cold = turn(client, tenant, f"{tenant}-a")
                    warm = statistics.median(turn(client, tenant, f"{tenant}-{i}") for i in range(3))
                    rows.append({"tenants": n + 1, "rss_mb": round(rss_mb(process.pid), 1), "cold_ms": round(cold, 1),
                                 "warm_ms": round(warm, 1)})
                    print(f"{n + 1:3d} tenants: {rows[-1]['rss_mb']:7.0f} MB  first turn {cold:6.0f} ms  "
                          f"warm {warm:5.0f} ms", flush=True)
        finally:
            process.terminate()
            process.wait(30)
    per_tenant = (rows[-1]["rss_mb"] - rows[0]["rss_mb"]) / max(1, len(rows) - 1)
    first = rows[0]["rss_mb"]
    fits = int(1 + (BUDGET_MB - first) // per_tenant) if per_tenant > 0 else None
    colds = [r["cold_ms"] for r in rows[1:]] or [rows[0]["cold_ms"]]
    return {"archive": str(archive), "archive_mb": round(archive.stat().st_size / 2**20, 1), "start_rss_mb": round(base, 1),
            "rows": rows, "per_tenant_mb": round(per_tenant, 1), "first_tenant_rss_mb": first,
            "tenants_per_4gb": fits, "cold_first_turn_ms": {"median": round(statistics.median(colds), 1),
                                                             "max": round(max(colds), 1)},
            "warm_turn_ms": round(statistics.median(r["warm_ms"] for r in rows), 1)}


def policies_of(archive: Path) -> str:
    """The dialogue policies an archive's graph holds (named in its metadata)."""
    import tarfile

    with tarfile.open(archive) as tar:
        member = next((m for m in tar.getmembers() if m.name.endswith("metadata.json")), None)
        text = tar.extractfile(member).read().decode() if member else ""
    found = [n for n in ("MemoizationPolicy", "RulePolicy", "TEDPolicy") if n in text]
    return " + ".join(found) or "unknown policies"


def write(result: dict[str, object], label: str, name: str = "tenant_capacity") -> None:
    """``bench/results/<name>.{json,md}``."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=1))
    rows = result["rows"]
    lines = [f"# Tenants per Rasa process ({label})", "",
             f"Archive {result['archive_mb']} MB ({result['policies']}, probe-first classifier). One Rasa "
             f"process, one copy of the archive per tenant; each tenant's first turn loads its agent.", "",
             f"- Resident memory with the start-up model only: {result['start_rss_mb']} MB",
             f"- With one tenant loaded: {result['first_tenant_rss_mb']} MB; each further tenant: "
             f"**{result['per_tenant_mb']} MB**",
             f"- Tenants in 4 GB: **{result['tenants_per_4gb']}** (extrapolated from the slope above)",
             f"- First turn of a cold tenant (its agent loads): median **{result['cold_first_turn_ms']['median']} ms**, "
             f"max {result['cold_first_turn_ms']['max']} ms; warm turn median {result['warm_turn_ms']} ms", "",
             "| tenants loaded | RSS MB | cold first turn ms | warm turn ms |", "|---:|---:|---:|---:|"]
    step = max(1, len(rows) // 20)
    lines += [f"| {r['tenants']} | {r['rss_mb']:.0f} | {r['cold_ms']:.0f} | {r['warm_ms']:.0f} |"
              for i, r in enumerate(rows) if i % step == 0 or i == len(rows) - 1]
    (RESULTS / f"{name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    """Run the measurement and write the results."""
    parser = argparse.ArgumentParser(prog="python -m bench.tenant_capacity")
    parser.add_argument("--tenants", type=int, default=40)
    parser.add_argument("--archive", type=Path, default=PROJECT_ROOT / "models" / "northwind.tar.gz")
    parser.add_argument("--name", default="tenant_capacity", help="results file name (bench/results/<name>.*)")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    result = run(args.tenants, args.archive)
    result["policies"] = policies_of(args.archive)
    write(result, f"{args.tenants} tenants, {time.strftime('%Y-%m-%d')}", args.name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
