"""The production compose files validate, start in the right order, keep the LLM servers private,
and give the backend an environment that loads into the right profile. (No Docker engine runs here:
`docker-compose config` is Debian's docker-compose v1, which `.ci/run` installs; what only a GPU can
show — the slices, the downloads, the servers answering — is what docs/DEPLOY.md says to check at each step.)"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from docassist.pipelines.llm.budget import Limits
from docassist.pipelines.settings import load_settings

ROOT = Path(__file__).resolve().parents[1]
MODELS = json.loads((ROOT / "config" / "llm_models.json").read_text())["models"]
EMBEDDING_MODELS = json.loads((ROOT / "config" / "embedding_models.json").read_text())["models"]
O200K_SHA256 = "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d"  # what openai-harmony checks


def compose_config(name: str) -> dict:
    if shutil.which("docker-compose") is None:
        if os.environ.get("CI") or Path("/.dockerenv").exists() or os.environ.get("DOCASSIST_CI"):
            pytest.fail("docker-compose is missing: .ci/run installs it (apt-get install docker-compose)")
        pytest.fail("docker-compose is missing: apt-get install docker-compose (the compose files are checked with it)")
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


def seconds(duration: str) -> int:
    """A compose duration ("1800s", "30m", "1h30m") in seconds."""
    total, number = 0, ""
    for ch in duration:
        if ch.isdigit():
            number += ch
        else:
            total += int(number) * {"s": 1, "m": 60, "h": 3600}[ch]
            number = ""
    return total + (int(number) if number else 0)


def published(port: dict | str) -> tuple[str, int]:
    """(host address, host port) of a port entry, in either form `docker-compose config` writes."""
    if isinstance(port, dict):
        return port.get("host_ip", "0.0.0.0"), int(port["published"])
    parts = port.split("/")[0].split(":")
    return (parts[0], int(parts[1])) if len(parts) == 3 else ("0.0.0.0", int(parts[0]))


def loopback_only(service: dict) -> bool:
    return all(published(p)[0] == "127.0.0.1" for p in service.get("ports", []))


def test_vllm_mig_compose_pins_each_server_to_its_mig_slice_and_keeps_it_private():
    cfg, env = compose_config("vllm-mig"), env_file("vllm-mig")
    services = cfg["services"]
    assert set(services) == {
        "vllm-medium", "vllm-small", "vllm-embed", "qdrant", "postgres", "redis", "backend", "worker", "proxy"
    }  # fmt: skip
    for name, uuid_key, model_key, port in (
        ("vllm-medium", "MIG_MEDIUM_UUID", "VLLM_MEDIUM_MODEL", 8001),
        ("vllm-small", "MIG_SMALL_UUID", "VLLM_SMALL_MODEL", 8002),
    ):
        svc = services[name]
        assert svc["image"] == "vllm/vllm-openai:v0.11.0"
        device = svc["deploy"]["resources"]["reservations"]["devices"][0]
        assert device["device_ids"] == [env[uuid_key]] and device["capabilities"] == ["gpu"]
        args = dict(a.lstrip("-").split("=", 1) for a in svc["command"] if "=" in a)
        assert args["model"] == env[model_key]
        assert int(args["max-model-len"]) == MODELS[env[model_key]]["context_window"]
        assert "/health" in " ".join(svc["healthcheck"]["test"])
        assert seconds(svc["healthcheck"]["start_period"]) >= 1800, "room for the first ~28 GB download"
        assert "model-cache:/models:rw" in svc["volumes"], "both servers share one model cache"
        assert [published(p)[1] for p in svc["ports"]] == [port] and loopback_only(svc), "no open LLM port"
        assert svc["environment"]["PYTORCH_CUDA_ALLOC_CONF"] == "expandable_segments:False"
        assert svc["environment"]["TIKTOKEN_ENCODINGS_BASE"] == "/encodings"
        assert any(v.endswith(":/encodings:ro") for v in svc["volumes"])
    small_args = services["vllm-small"]["command"]
    assert "--ignore-patterns=consolidated.safetensors" in small_args, "Mistral's duplicate weights are skipped"
    backend = services["backend"]
    assert {k: v["condition"] for k, v in backend["depends_on"].items()} == {
        "qdrant": "service_healthy",
        "postgres": "service_healthy",
        "redis": "service_healthy",
    }, "one failing LLM server does not keep the backend from starting"
    assert int(backend["deploy"]["replicas"]) >= 2 and "ports" not in backend
    assert services["worker"]["command"] == ["docassist", "worker"]
    assert published(services["proxy"]["ports"][0])[1] == 8000
    for private in ("qdrant", "postgres", "redis"):
        assert "ports" not in services[private] or loopback_only(services[private])


def test_vllm_mig_backend_environment_loads_the_vllm_profile_with_shared_state():
    backend_env = compose_config("vllm-mig")["services"]["backend"]["environment"]
    s = load_settings({k: str(v) for k, v in backend_env.items()})
    assert s.profile_name == "vllm-mig"
    assert s.endpoints["medium"].base_url == "http://vllm-medium:8000/v1"
    assert s.endpoints["small"].base_url == "http://vllm-small:8000/v1"
    assert s.endpoints["medium"].model == "openai/gpt-oss-20b" and s.endpoints["small"].provider == "vLLM"
    assert s.endpoints["medium"].reasoning_effort == "low"
    assert (s.profile.routing.map, s.profile.routing.reduce, s.profile.routing.answer) == ("small", "medium", "medium")
    assert s.profile.vector_store.url == "http://qdrant:6333" and Limits.from_env(s.environment).max_tokens == 2048
    assert s.database_url.startswith("postgresql://docassist:") and s.redis_url == "redis://redis:6379/0"


def test_ollama_compose_pins_one_gpu_and_keeps_it_private():
    cfg = compose_config("ollama")
    services = cfg["services"]
    assert set(services) == {"ollama", "qdrant", "postgres", "redis", "backend", "worker", "proxy"}
    assert 'ollama pull "$${OLLAMA_EMBEDDING_MODEL}"' in " ".join(services["ollama"]["command"])
    healthy = " ".join(services["ollama"]["healthcheck"]["test"])
    assert "OLLAMA_MODEL" in healthy and "OLLAMA_EMBEDDING_MODEL" in healthy, "healthy once both are pulled"
    ollama = services["ollama"]
    assert "ollama pull" in " ".join(ollama["command"]) and loopback_only(ollama)
    device = ollama["deploy"]["resources"]["reservations"]["devices"][0]
    assert "count" not in device and device["device_ids"] == [env_file("ollama")["OLLAMA_GPU"]]
    tag = ollama["image"].rsplit(":", 1)[1]
    assert tuple(int(x) for x in tag.split(".")) <= (0, 13, 1), "0.13.2+ falls back to the CPU on MIG"
    backend_env = services["backend"]["environment"]
    s = load_settings({k: str(v) for k, v in backend_env.items()})
    assert s.profile_name == "ollama"
    ep = s.endpoints["ollama"]
    assert ep.provider == "Ollama" and ep.base_url == "http://ollama:11434"
    assert s.model_spec(ep.model) is not None, "the pulled model is described in config/llm_models.json"
    embedding = s.profile.embedding
    assert (embedding.kind, embedding.url) == ("openai", "http://ollama:11434/v1")
    assert embedding.spec is not None and embedding.spec.name == "BAAI/bge-m3", "Ollama's bge-m3 is BAAI/bge-m3"
    assert services["ollama"]["environment"]["OLLAMA_EMBEDDING_MODEL"] == embedding.model


def test_qdrant_server_is_within_one_minor_version_of_the_client():
    from importlib.metadata import version

    client = tuple(int(x) for x in version("qdrant-client").split(".")[:2])
    for name in ("vllm-mig", "ollama"):
        tag = compose_config(name)["services"]["qdrant"]["image"].rsplit(":v", 1)[1]
        server = tuple(int(x) for x in tag.split(".")[:2])
        assert server[0] == client[0] and abs(server[1] - client[1]) <= 1, (name, tag)


def test_the_harmony_encoding_gpt_oss_needs_is_shipped():
    data = (ROOT / "deploy" / "encodings" / "o200k_base.tiktoken").read_bytes()
    assert hashlib.sha256(data).hexdigest() == O200K_SHA256


def test_dockerfile_bakes_models_in_and_runs_offline():
    text = (ROOT / "Dockerfile").read_text()
    assert "HF_HUB_OFFLINE=1" in text and "assemble()" in text
    for folder in ("api", "pipelines", "prompts", "config", "evals", "bench"):
        assert f"COPY {folder} ./{folder}" in text, f"{folder} is a package of the distribution"


def test_vllm_mig_embedding_server_shares_the_small_slice_within_its_memory_and_feeds_the_backend():
    cfg, env = compose_config("vllm-mig"), env_file("vllm-mig")
    services = cfg["services"]
    embed, small = services["vllm-embed"], services["vllm-small"]
    assert embed["image"] == small["image"] and "model-cache:/models:rw" in embed["volumes"]
    device = embed["deploy"]["resources"]["reservations"]["devices"][0]
    assert device["device_ids"] == [env["MIG_EMBED_UUID"]] == [env["MIG_SMALL_UUID"]], "beside Mistral-7B"
    args = dict(a.lstrip("-").split("=", 1) for a in embed["command"] if "=" in a)
    spec = EMBEDDING_MODELS[args["model"]]
    assert args["served-model-name"] == args["model"] and args["runner"] == "pooling"
    assert int(args["max-model-len"]) == spec["max_tokens"]
    small_args = dict(a.lstrip("-").split("=", 1) for a in small["command"] if "=" in a)
    shares = float(args["gpu-memory-utilization"]) + float(small_args["gpu-memory-utilization"])
    assert shares <= 0.90, "the two servers' budgets of the slice, together, as one server's default"
    assert small["depends_on"] == {"vllm-embed": {"condition": "service_healthy"}}, "one loads at a time"
    assert [published(p)[1] for p in embed["ports"]] == [8003] and loopback_only(embed)
    backend_env = services["backend"]["environment"]
    s = load_settings({k: str(v) for k, v in backend_env.items()})
    embedding = s.profile.embedding
    assert (embedding.kind, embedding.url) == ("openai", "http://vllm-embed:8000/v1")
    assert embedding.model == args["served-model-name"] and embedding.spec is not None
    assert embedding.api_key is None or embedding.api_key == env.get("VLLM_API_KEY"), "the vLLM servers' one key"
    assert "vllm-embed" not in services["backend"]["depends_on"], "reported by /health, not waited for"
