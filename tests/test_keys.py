"""`API_KEYS` fails closed: every list that could be read two ways stops the start with a message
saying what to write, and a key matches only as the exact printable ASCII it was configured as.
No server needed, except the one check that `docassist serve` refuses to start."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from docassist.pipelines.keys import KeyConfigError, describe, digest_of, find_key, parse_api_keys
from docassist.pipelines.settings import ConfigError, load_settings


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ("pkX:", "empty space"),
        ("pkX: ", "empty space"),
        ("pkX:|", "empty space"),
        ("pkX:a||b", "empty space"),
        ("pkA:spA,pkA:*", "same key"),
        ("pkA:spA,pkA", "no ':'"),
        (" , ", "empty"),
        ("pkA:spA,", "empty"),
        ("pkA:spA,spB", "join the spaces with '|'"),
        ("ключ:spA", "printable ASCII"),
        ("key\twith-tab:*", "printable ASCII"),
        ("admin-key", "KEY:*"),
        ("pkA:*|spA", "stands alone"),
        ("pkA:../etc", "not a space id"),
        ("sha256:abc:*", "64 hex digits"),
    ],
)
def test_an_ambiguous_or_open_key_list_stops_the_start_saying_what_to_write(raw: str, says: str):
    with pytest.raises(KeyConfigError) as err:
        parse_api_keys(raw)
    assert says in str(err.value)
    with pytest.raises(ConfigError) as cfg:
        load_settings({"API_KEYS": raw})
    assert cfg.value.field == "API_KEYS"


def test_a_key_given_in_clear_and_as_its_hash_is_the_same_key():
    digest = hashlib.sha256(b"team-key-0123456789").hexdigest()
    with pytest.raises(KeyConfigError, match="same key"):
        parse_api_keys(f"team-key-0123456789:a,sha256:{digest}:b")


def test_keys_reach_exactly_what_they_name():
    digest = hashlib.sha256(b"hashed-key-for-team-b").hexdigest()
    keys = parse_api_keys(f"admin-key-0123456789:*, team-a-key-0123456:team_a|team_x ,sha256:{digest.upper()}:team_b")
    assert find_key(b"admin-key-0123456789", keys).spaces is None
    assert find_key(b"team-a-key-0123456", keys).spaces == {"team_a", "team_x"}
    assert find_key(b"hashed-key-for-team-b", keys).spaces == {"team_b"}
    for wrong in (b"", b"admin-key", b"ADMIN-KEY-0123456789", b"admin-key-0123456789 ", digest.encode()):
        assert find_key(wrong, keys) is None, wrong
    assert parse_api_keys("") == () and parse_api_keys("   ") == ()


def test_two_non_ascii_keys_of_one_length_cannot_collide():
    """Sent as UTF-8, 'ключ' and 'замок' are bytes no configured key has; a key the header can
    carry only as '????' matches nothing either."""
    keys = parse_api_keys("plain-ascii-key-0001:*")
    for sent in ("ключ".encode(), "замок".encode(), b"????", "plain-ascii-key-0001".encode("utf-16-le")):
        assert find_key(sent, keys) is None


def test_the_start_log_says_what_each_key_reaches_never_the_key():
    digest = digest_of("x" * 20).hex()
    keys = parse_api_keys(f"short:*,a-long-enough-key-000:team_a|team_b,sha256:{digest}:ops")
    lines = describe(keys)
    assert lines == [
        "key 1: every space (weak: under 16 characters)",
        "key 2: team_a, team_b",
        "key 3: ops (given as sha256)",
    ]
    assert not any("short" in line or "a-long-enough" in line or digest in line for line in lines)


def test_docassist_key_makes_a_key_whose_entry_reaches_what_was_asked():
    out = subprocess.run(
        [str(Path(sys.executable).parent / "docassist"), "key", "--spaces", "team_a|team_b"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    key = out.split("it is not shown again): ")[1].split()[0]
    entry = out.split("API_KEYS entry: ")[1].strip()
    assert key not in entry and entry.startswith("sha256:")
    keys = parse_api_keys(entry)
    assert find_key(key.encode(), keys).spaces == {"team_a", "team_b"}


def test_serve_refuses_to_start_on_a_key_list_it_would_have_to_guess(tmp_path: Path):
    """The first release read 'pkA:spA,spB' as a key for spA and a key for every space."""
    done = subprocess.run(
        [str(Path(sys.executable).parent / "docassist"), "serve", "--port", "9"],
        env={"PATH": "/usr/bin:/bin", "DATA_DIR": str(tmp_path), "API_KEYS": "pkA:spA,spB", "HF_HUB_OFFLINE": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "API_KEYS entry 2" in done.stderr and "join the spaces with '|'" in done.stderr
    assert "pkA" not in done.stderr and "spB" not in done.stderr


@pytest.mark.parametrize("name", ["pb\n", "pb\r\n", "\npb", "pb\x00", "p b"])
def test_a_space_id_is_matched_whole_a_trailing_newline_included(name: str):
    """Python's `$` matches before a trailing newline: "pb\\n" once passed as a space of its own."""
    from docassist.pipelines.errors import InvalidInput
    from docassist.pipelines.spaces import check_space_id, is_space_id

    assert is_space_id("pb") and check_space_id("pb") == "pb"
    assert not is_space_id(name)
    with pytest.raises(InvalidInput):
        check_space_id(name)
