"""The settings a command line command starts with: `--data-dir` applied, a bad value printed as
one line and exit status 2, never a traceback."""

from __future__ import annotations

import argparse
import os
import sys

from docassist.pipelines.settings import ConfigError, Settings, load_settings


def checked_settings() -> Settings:
    """The settings, and the limits the parts read for themselves, checked before a start:
    `ConfigError` for a bad value of either."""
    from docassist.pipelines.identity.config import IdentityConfig
    from docassist.pipelines.runtime import PartLimits

    settings = load_settings()
    PartLimits.of(settings)
    IdentityConfig.from_env(settings.environment)
    return settings


def command_settings(args: argparse.Namespace, parts: bool = True) -> Settings | None:
    """The settings for a command with `args.data_dir`; with `parts`, the parts' own limits checked
    too (a command that starts the service's parts). None once a configuration error is printed."""
    if args.data_dir:
        os.environ["DATA_DIR"] = args.data_dir
    try:
        return checked_settings() if parts else load_settings()
    except ConfigError as exc:
        print(f"docassist: configuration error: {exc}", file=sys.stderr)
        return None
