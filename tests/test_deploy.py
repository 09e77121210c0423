"""The production compose files validate, and the environment each gives the backend loads into
the right profile with the right endpoints. (No Docker engine runs here: `docker-compose
config` is Debian's docker-compose v1, which `.ci/run` installs.)"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from docassist.pipelines.settings import load_settings

ROOT = Path(__file__).resolve().parents[1]
MODELS = json.loads((ROOT / "config" / "llm_models.json").read_text())["models"]


def compose_config(name: str) -> dict:
    if shutil.which("docker-compose") is None:
        if os.environ.get("CI"):
            pytest.fail("docker-compose is missing: .ci/run must install it (apt-get install docker-compose)")
        pytest.skip("docker-compose not installed (apt-get install docker-compose)")
    out = subprocess.run(
        ["docker-compose", "--env-file", f".env.{name}", "-f", f"docker-compose.{name}.yml", "config"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return yaml.safe_load(out.stdout)


def env_file(name: str) -> dict[str, str]:
    pairs = (
        line.split("=", 1)
        for line in (ROOT / f".env.{name}").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    )
    return {k: v for k, v in pairs}


def test_vllm_mig_compose_pins_each_server_to_its_mig_slice():
    cfg, env = compose_config("vllm-mig"), env_file("vllm-mig")
    services = cfg["services"]
    assert set(services) == {"vllm-medium", "vllm-small", "qdrant", "backend"}
    for name, uuid_key, model_key, port in (
        ("vllm-medium", "MIG_MEDIUM_UUID", "VLLM_MEDIUM_MODEL", 8001),
        ("vllm-small", "MIG_SMALL_UUID", "VLLM_SMALL_MODEL", 8002),
    ):
        svc = services[name]
        assert svc["image"].startswith("vllm/vllm-openai:")
        device = svc["deploy"]["resources"]["reservations"]["devices"][0]
        assert device["device_ids"] == [env[uuid_key]] and device["capabilities"] == ["gpu"]
        args = dict(a.lstrip("-").split("=", 1) for a in svc["command"] if "=" in a)
        assert args["model"] == env[model_key]
        assert int(args["max-model-len"]) == MODELS[env[model_key]]["context_window"]
        assert "/health" in " ".join(svc["healthcheck"]["test"])
        assert "model-cache:/models:rw" in svc["volumes"], "both servers share one model cache"
        assert [int(p["published"]) for p in svc["ports"]] == [port]
    backend = services["backend"]
    assert backend["build"]["context"]
    assert backend["environment"]["PYTHONUNBUFFERED"] == "1"
    assert backend["environment"]["LLM_MAX_TOKENS"] == "2048"
    assert {k: v["condition"] for k, v in backend["depends_on"].items()} == {
        "vllm-medium": "service_healthy",
        "vllm-small": "service_healthy",
        "qdrant": "service_healthy",
    }


def test_vllm_mig_backend_environment_loads_the_vllm_profile():
    backend_env = compose_config("vllm-mig")["services"]["backend"]["environment"]
    s = load_settings({k: str(v) for k, v in backend_env.items()})
    assert s.profile_name == "vllm-mig"
    assert s.endpoints["medium"].base_url == "http://vllm-medium:8000/v1"
    assert s.endpoints["small"].base_url == "http://vllm-small:8000/v1"
    assert s.endpoints["medium"].model == "openai/gpt-oss-20b" and s.endpoints["small"].provider == "vLLM"
    assert (s.profile.routing.map, s.profile.routing.reduce, s.profile.routing.answer) == ("small", "medium", "medium")
    assert s.profile.vector_store.url == "http://qdrant:6333" and s.llm_max_tokens == 2048


def test_ollama_compose_and_backend_environment():
    cfg = compose_config("ollama")
    assert set(cfg["services"]) == {"ollama", "qdrant", "backend"}
    assert "ollama pull" in " ".join(cfg["services"]["ollama"]["command"])
    backend_env = cfg["services"]["backend"]["environment"]
    s = load_settings({k: str(v) for k, v in backend_env.items()})
    assert s.profile_name == "ollama"
    ep = s.endpoints["ollama"]
    assert ep.provider == "Ollama" and ep.base_url == "http://ollama:11434"
    assert s.model_spec(ep.model) is not None, "the pulled model is described in config/llm_models.json"


def test_dockerfile_bakes_models_in_and_runs_offline():
    text = (ROOT / "Dockerfile").read_text()
    assert "HF_HUB_OFFLINE=1" in text and "torch==2.13.0" in text and "assemble()" in text
