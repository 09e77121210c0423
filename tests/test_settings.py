"""Configuration: profiles, environment overrides, and errors that name file and field."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from docassist.pipelines.runtime import PartLimits
from docassist.pipelines.settings import ConfigError, load_settings

CONFIG = Path(__file__).resolve().parents[1] / "config"


def test_local_profile_is_the_default_with_2048_max_tokens():
    s = load_settings({})
    assert s.profile_name == "local" and list(s.endpoints) == ["local"]
    assert s.endpoints["local"].provider == "llama.cpp" and s.endpoints["local"].managed
    assert PartLimits.of(s).llm.max_tokens == 2048
    assert s.profile.vector_store.url is None, "local mode Qdrant on disk"


def test_vllm_mode_names_medium_and_small_with_routing_and_overrides():
    s = load_settings(
        {
            "LLM_MODE": "vllm",
            "VLLM_SMALL_URL": "http://10.0.0.2:8002/v1",
            "LLM_MAX_TOKENS": "512",
            "QDRANT_URL": "http://qdrant:6333",
            "DATA_DIR": "/srv/docassist",
        }
    )
    assert s.profile_name == "vllm-mig"
    medium, small = s.endpoints["medium"], s.endpoints["small"]
    assert (medium.model, small.model) == ("openai/gpt-oss-20b", "mistralai/Mistral-7B-Instruct-v0.3")
    assert medium.base_url == "http://vllm-medium:8000/v1" and small.base_url == "http://10.0.0.2:8002/v1"
    assert (s.profile.routing.map, s.profile.routing.reduce, s.profile.routing.answer) == ("small", "medium", "medium")
    assert PartLimits.of(s).llm.max_tokens == 512 and str(s.data_dir) == "/srv/docassist"
    assert s.profile.vector_store.url == "http://qdrant:6333"


def test_model_aliases_resolve():
    s = load_settings({})
    assert s.model_spec("OpenGPT/gpt-oss-20b").name == "openai/gpt-oss-20b"
    assert s.model_spec("openai/gpt-oss-20b").context_window == 8192
    assert load_settings({"LLM_CONTEXT_WINDOW": "1024"}).model_spec("gemma-3-270m-q4_k_m").context_window == 1024


def test_ollama_profile():
    s = load_settings({"LLM_MODE": "ollama", "OLLAMA_MODEL": "mistral:7b-instruct"})
    assert s.endpoints["ollama"].provider == "Ollama"
    assert s.model_spec(s.endpoints["ollama"].model).name == "mistralai/Mistral-7B-Instruct-v0.3"


def _config_copy(tmp_path: Path) -> Path:
    target = tmp_path / "config"
    shutil.copytree(CONFIG, target)
    return target


def test_bad_model_field_names_file_and_field(tmp_path, monkeypatch):
    cfg = _config_copy(tmp_path)
    models = json.loads((cfg / "llm_models.json").read_text())
    models["models"]["openai/gpt-oss-20b"]["context_window"] = "lots"
    (cfg / "llm_models.json").write_text(json.dumps(models))
    monkeypatch.setenv("DOCASSIST_CONFIG_DIR", str(cfg))
    with pytest.raises(ConfigError) as err:
        load_settings({})
    assert str(cfg / "llm_models.json") in str(err.value)
    assert "models.openai/gpt-oss-20b.context_window" in str(err.value)


def test_ocr_limits_come_from_the_environment():
    limits = PartLimits.of(
        load_settings(
            {"MAX_OCR_PAGES": "3", "OCR_PAGE_TIMEOUT_S": "9", "MAX_IMAGE_PIXELS": "1000", "TESSERACT_CMD": "/opt/t"}
        )
    ).extract
    assert (limits.max_ocr_pages, limits.ocr_page_timeout_s, limits.max_image_pixels) == (3, 9, 1000)
    assert limits.tesseract_cmd == "/opt/t" and PartLimits.of(load_settings({})).extract.max_ocr_pages == 200


@pytest.mark.parametrize(
    ("env", "field"),
    [
        ({"LLM_MODE": "gpu"}, "LLM_MODE"),
        ({"LLM_MAX_TOKENS": "many"}, "LLM_MAX_TOKENS"),
        ({"LLM_MAX_TOKENS": "0"}, "LLM_MAX_TOKENS"),
        ({"LLM_MODE": "vllm", "ROUTE_MAP": "large"}, "routing.map"),
        ({"LLM_MODE": "vllm", "VLLM_SMALL_CONCURRENCY": "0"}, "endpoints.small.max_concurrency"),
        ({"LLM_MODE": "ollama", "OLLAMA_MODEL": "llama9:900b"}, "endpoints.ollama.model"),
        ({"OCR_PAGE_TIMEOUT_S": "0"}, "OCR_PAGE_TIMEOUT_S"),
        ({"MAX_IMAGE_PIXELS": "lots"}, "MAX_IMAGE_PIXELS"),
    ],
)
def test_bad_environment_names_the_field(env, field):
    """The settings, or the limits a part reads for itself: refused alike at a start (`docassist serve`)."""
    with pytest.raises(ConfigError) as err:
        PartLimits.of(load_settings(env))
    assert field in str(err.value)


def test_serve_refuses_to_start_on_bad_config_and_says_where(tmp_path):
    cfg = _config_copy(tmp_path)
    (cfg / "profiles" / "local.json").write_text('{"provider": "llama.cpp", "endpoints": ')
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "docassist"), "serve", "--port", "1"],
        env={"DOCASSIST_CONFIG_DIR": str(cfg), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert f"{cfg / 'profiles' / 'local.json'}: line 1" in proc.stderr and "invalid JSON" in proc.stderr


def test_every_environment_variable_is_declared_once_and_documented():
    """Each variable is one `Field` of the group that owns it; the README's tables name them all."""
    from docassist.pipelines.documents.limits import ExtractLimits
    from docassist.pipelines.llm.budget import Limits
    from docassist.pipelines.settings import Settings

    declared: list[str] = []
    for group in (Settings, ExtractLimits, Limits):
        for field in group.model_fields.values():
            alias = field.validation_alias
            names = getattr(alias, "choices", [alias]) if alias else []
            declared += [str(name) for name in names]
    assert len(declared) == len(set(declared)), "a variable declared twice"
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    undocumented = [name for name in declared if f"`{name}`" not in readme and name != "JOBS_REDIS_URL"]
    assert undocumented == []
    assert PartLimits.of(load_settings({"LLM_MAX_TOKENS": "77"})).llm.max_tokens == 77, "read by its owner"


def test_settings_import_no_feature_code():
    """The settings sit below the features: a part's own limits are read by the part, not held here."""
    import ast

    tree = ast.parse((Path(__file__).resolve().parents[1] / "pipelines" / "settings.py").read_text(encoding="utf-8"))
    ours = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and "docassist" in (n.module or "")}
    assert ours == {"docassist.pipelines.environment", "docassist.pipelines.keys", "docassist.pipelines.sampling"}
