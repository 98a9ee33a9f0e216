"""The Rasa process's per-tenant agents: lazy loads, swaps on the production file, a memory budget."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from connectors.tenant_agents import NoAssistantError, TenantAgentCache, own_domain_view


def publish(registry: Path, tenant: str, archive: str) -> Path:
    folder = registry / tenant
    folder.mkdir(parents=True, exist_ok=True)
    (folder / archive).write_bytes(archive.encode())
    pointer = folder / "production.json"
    staging = folder / "tmp.json"
    staging.write_text(json.dumps({"model_file": str(folder / archive)}))
    os.replace(staging, pointer)
    stat = pointer.stat()
    os.utime(pointer, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))  # a new stamp even within one tick
    return folder / archive


class Loads:
    """A stand-in for building an agent: records what was loaded, optionally slowly."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.paths: list[str] = []
        self.delay_s = delay_s

    def __call__(self, path: str) -> SimpleNamespace:
        import time

        time.sleep(self.delay_s)
        self.paths.append(path)
        return SimpleNamespace(model_id=Path(path).name, path=path)


def cache(tmp_path: Path, loads: Loads, budget_mb: float = 100.0) -> TenantAgentCache:
    startup = SimpleNamespace(processor=SimpleNamespace(model_path=tmp_path / "startup.tar.gz"))
    return TenantAgentCache(startup, tmp_path / "models", budget_mb, build=loads)


def test_agents_load_lazily_per_tenant_and_swap_when_the_production_file_changes(tmp_path: Path) -> None:
    loads = Loads()
    agents = cache(tmp_path, loads)
    publish(tmp_path / "models", "acme", "v1.tar.gz")
    publish(tmp_path / "models", "globex", "v1.tar.gz")

    async def scenario() -> None:
        assert loads.paths == []  # nothing loads before a tenant's first turn
        acme = await agents.agent_for("acme")
        assert (await agents.agent_for("acme")) is acme and len(loads.paths) == 1
        globex = await agents.agent_for("globex")
        assert globex is not acme and globex.path.endswith("globex/v1.tar.gz")
        publish(tmp_path / "models", "acme", "v2.tar.gz")  # a promotion of acme only
        assert (await agents.agent_for("acme")).model_id == "v2.tar.gz"
        assert (await agents.agent_for("globex")) is globex
        assert [e["model_id"] for e in agents.describe()["agents"]] == ["v2.tar.gz", "v1.tar.gz"]

    asyncio.run(scenario())


def test_a_tenant_without_a_production_model_gets_none_and_hostile_ids_never_reach_the_disk(tmp_path: Path) -> None:
    agents = cache(tmp_path, Loads())
    publish(tmp_path / "models", "acme", "v1.tar.gz")
    for tenant in ("globex", "../acme", "acme/../acme", "", "a" * 80):
        with pytest.raises(NoAssistantError):
            asyncio.run(agents.agent_for(tenant))


def test_concurrent_first_turns_of_one_tenant_load_it_once_and_others_are_not_blocked(tmp_path: Path) -> None:
    loads = Loads(delay_s=0.3)
    agents = cache(tmp_path, loads)
    publish(tmp_path / "models", "acme", "v1.tar.gz")

    async def scenario() -> None:
        results = await asyncio.gather(*(agents.agent_for("acme") for _ in range(5)))
        assert len({id(r) for r in results}) == 1

    asyncio.run(scenario())
    assert len(loads.paths) == 1


def test_the_least_recently_used_agent_leaves_when_the_budget_is_full(tmp_path: Path) -> None:
    loads = Loads()
    agents = cache(tmp_path, loads, budget_mb=2.5)  # each stand-in agent counts 1 MB
    for tenant in ("a1", "a2", "a3"):
        publish(tmp_path / "models", tenant, "v1.tar.gz")

    async def scenario() -> None:
        await agents.agent_for("a1")
        await agents.agent_for("a2")
        await agents.agent_for("a1")  # a1 used last: a2 is the one to go
        await agents.agent_for("a3")
        assert [e["tenant_id"] for e in agents.describe()["agents"]] == ["a1", "a3"]
        await agents.agent_for("a2")  # loaded again on its next turn
        assert agents.evictions == 2

    asyncio.run(scenario())
    assert len(loads.paths) == 4


def test_a_model_that_fails_to_load_leaves_the_tenants_agent_serving(tmp_path: Path) -> None:
    def build(path: str) -> SimpleNamespace:
        if path.endswith("broken.tar.gz"):
            raise RuntimeError("not a model")
        return SimpleNamespace(model_id=Path(path).name)

    agents = TenantAgentCache(SimpleNamespace(), tmp_path / "models", 100.0, build=build)
    publish(tmp_path / "models", "acme", "v1.tar.gz")

    async def scenario() -> None:
        before = await agents.agent_for("acme")
        with pytest.raises(RuntimeError):
            await agents.load("acme", str(publish(tmp_path / "models", "other", "broken.tar.gz")))
        assert agents.describe()["agents"][0]["model_id"] == before.model_id

    asyncio.run(scenario())


def test_each_agent_gets_its_own_domain_over_the_same_connections() -> None:
    engine = object()
    inner = SimpleNamespace(engine=engine, domain="northwind")
    wrapper = SimpleNamespace(_tracker_store=inner, _fallback_tracker_store=None, domain="northwind")
    view = own_domain_view(wrapper)
    view._tracker_store.domain = "globex"
    assert inner.domain == "northwind" and view._tracker_store.engine is engine
