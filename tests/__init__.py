"""docassist's tests (README: two tiers, `-m "not slow"` and the whole suite)."""

import os

# The embedded default's models come from PyPI packages: the test process, which serves the
# session's service itself, never asks a model hub, as `service_env` tells each `docassist serve`
# it starts. Set here, before any test module imports a model library that reads it.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
