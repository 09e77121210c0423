"""Settings read from the environment, each variable declared once — its name, type, default and
bounds in one `Field` — by the part of docassist that owns it (pydantic-settings).

A group of settings subclasses `FromEnvironment` and is read with `from_env(env)`: the mapping
given (the process's environment, or a test's), blank values treated as unset, a bad value a
`ConfigError` naming the variable. Constructing a group directly (`ExtractLimits(max_ocr_pages=3)`)
reads no environment at all: only `from_env` does.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Self

from pydantic import ValidationError
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)


def process_environment() -> dict[str, str]:
    """A copy of this process's environment that another thread changing it cannot break.

    `dict(os.environ)` lists the keys, then reads each: llama-index sets `TIKTOKEN_CACHE_DIR` and
    deletes it again while it loads its tokenizer, and a copy taken meanwhile on another thread
    raised `KeyError` (the service then failed to start). A variable gone by the time it is read
    is left out."""
    return {key: value for key in list(os.environ) if (value := os.environ.get(key)) is not None}


class ConfigError(RuntimeError):
    """A configuration problem, reported with the file and field at fault."""

    def __init__(self, file: str, field: str, message: str) -> None:
        super().__init__(f"{file}: {field}: {message}")
        self.file, self.field = file, field


class _Given(EnvSettingsSource):
    """pydantic-settings' environment source over a given mapping, blanks left out."""

    def __init__(self, settings_cls: type[BaseSettings], env: Mapping[str, str]) -> None:
        self._given = {name: value for name, value in env.items() if value != ""}
        super().__init__(settings_cls, case_sensitive=True)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return self._given


class FromEnvironment(BaseSettings):
    """A group of settings declared with `Field(default, …, validation_alias="VARIABLE")`."""

    model_config = SettingsConfigDict(case_sensitive=True, extra="ignore", populate_by_name=True, frozen=True)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)  # the environment only through `from_env`

    @classmethod
    def from_env(cls, env: Mapping[str, str], **values: Any) -> Self:
        """The group from `env`; `values` (by field name) are not the environment's to set."""
        try:
            given = _Given(cls, env)()
        except SettingsError as exc:  # a value its type reads as JSON, and it is not
            raise ConfigError("environment", str(exc).split('"')[1] if '"' in str(exc) else "-", str(exc)) from exc
        try:
            return cls.model_validate({**given, **values})
        except ValidationError as exc:
            error = exc.errors()[0]
            raise ConfigError("environment", str(error["loc"][0]) if error["loc"] else "-", error["msg"]) from exc
