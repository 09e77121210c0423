"""`ACCESS_RULES`: groups mapped to spaces with roles, read at start — what a person's groups give
them, and the start refused (with what to write) when the rules cannot be read without guessing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from docassist.pipelines.environment import ConfigError
from docassist.pipelines.identity.config import IdentityConfig
from docassist.pipelines.identity.rules import RulesConfigError, parse_access_rules


def test_rights_are_the_union_of_the_groups_rules_highest_role_per_space():
    rules = parse_access_rules("staff:*:reader, legal:contracts|policies:editor, auditors:contracts:admin")
    staff = rules.rights_for(["staff"])
    assert staff.role_in("anything") == "reader" and staff.reach is None
    lawyer = rules.rights_for(["staff", "legal"])
    assert lawyer.role_in("contracts") == "editor" and lawyer.role_in("policies") == "editor"
    assert lawyer.role_in("hr") == "reader"
    both = rules.rights_for(["legal", "auditors"])
    assert both.role_in("contracts") == "admin" and both.role_in("policies") == "editor"
    assert both.role_in("hr") is None and both.reach == frozenset({"contracts", "policies"})
    assert rules.rights_for(["nobody-knows-this-group"]).empty
    assert rules.rights_for([]).empty


def test_group_names_match_without_case_as_directories_compare_them():
    rules = parse_access_rules("Engineering:eng:editor")
    assert rules.rights_for(["engineering"]).role_in("eng") == "editor"


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ("staff:*:owner", "reader, editor or admin"),
        ("staff:*", "GROUP:SPACES:ROLE"),
        ("staff:*:reader,,legal:x:editor", "empty"),
        (":*:reader", "names no group"),
        ("staff::reader", "empty space"),
        ("staff:a|*:reader", "stands alone"),
        ("staff:bad space:reader", "not a space id"),
        ("staff:a|a:reader", "twice"),
        ("staff:a:reader,staff:a:editor", "one role per space"),
        ("Staff:*:reader,staff:*:editor", "one group to a directory"),
        ("staff:*:reader,staff:*:admin", "every space"),
    ],
)
def test_rules_that_cannot_be_read_without_guessing_are_refused_saying_what_to_write(raw: str, says: str):
    with pytest.raises(RulesConfigError, match=says):
        parse_access_rules(raw)


def test_sign_in_without_rules_refuses_to_start():
    env = {"LDAP_URL": "ldap://127.0.0.1:1", "LDAP_USER_BASE": "ou=people,dc=example,dc=org"}
    with pytest.raises(ConfigError, match="ACCESS_RULES names no group"):
        IdentityConfig.from_env(env)
    with pytest.raises(ConfigError, match="ACCESS_RULES"):
        IdentityConfig.from_env({**env, "ACCESS_RULES": "staff:*:superuser"})
    config = IdentityConfig.from_env({**env, "ACCESS_RULES": "staff:*:reader"})
    assert config.sign_in and config.rules.rights_for(["staff"]).every == "reader"


def test_keys_only_needs_no_rules():
    config = IdentityConfig.from_env({"API_KEYS": "k" * 20 + ":*"})
    assert not config.sign_in and not config.rules


@pytest.mark.slow  # a `docassist serve` of its own
@pytest.mark.parametrize(
    ("rules", "says"),
    [
        ("", "ACCESS_RULES names no group"),
        ("staff:a:reader,staff:a:admin", "one role per space"),
        ("staff:*:boss", "reader, editor or admin"),
    ],
)
def test_serve_refuses_to_start_with_sign_in_and_rules_it_cannot_read(tmp_path: Path, rules: str, says: str):
    env = {
        "PATH": "/usr/bin:/bin",
        "DATA_DIR": str(tmp_path),
        "HF_HUB_OFFLINE": "1",
        "LDAP_URL": "ldap://127.0.0.1:9",
        "LDAP_USER_BASE": "ou=people,dc=example,dc=org",
        "ACCESS_RULES": rules,
    }
    done = subprocess.run(
        [str(Path(sys.executable).parent / "docassist"), "serve", "--port", "9"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert "configuration error" in done.stderr and says in done.stderr
