"""`ACCESS_RULES`: which directory groups reach which spaces, with which role — read once, at
start, and refused there when it cannot be read without guessing, with a message that says what
to write (as `API_KEYS` is):

    ACCESS_RULES = RULE[,RULE…]
    RULE         = GROUP:SPACES:ROLE
    GROUP        = a group's name as the directory or the provider gives it (LDAP: its cn)
    SPACES       = *  (every space, those made later too)  |  space_a|space_b
    ROLE         = reader | editor | admin

A person's rights are the union of their groups' rules: in each space the highest role any of
their groups gives there (a `*` rule counts in every space).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal, get_args

from docassist.pipelines.spaces import is_space_id

Role = Literal["reader", "editor", "admin"]
ROLES: tuple[Role, ...] = get_args(Role)  # lowest first
EVERY_SPACE = "*"
_HOW = (
    "write each rule as GROUP:SPACES:ROLE — SPACES is * for every space or space_a|space_b, ROLE is "
    "reader, editor or admin — rules separated by commas, e.g. ACCESS_RULES='staff:*:reader,legal:contracts:editor'"
)
# what each role may do beyond the one below it, for messages that say why a request was refused
WHAT: dict[Role, str] = {
    "reader": "search, ask, read summaries and documents",
    "editor": "upload, change and delete documents",
    "admin": "read the space's audit trail",
}


class RulesConfigError(ValueError):
    """`ACCESS_RULES` cannot be read without guessing; the message says what to write."""


def rank(role: Role | None) -> int:
    return -1 if role is None else ROLES.index(role)


def higher(a: Role | None, b: Role | None) -> Role | None:
    return a if rank(a) >= rank(b) else b


@dataclass(frozen=True)
class Rights:
    """What a caller may do where: a role in every space (`every`), and roles in named spaces."""

    every: Role | None = None
    spaces: Mapping[str, Role] = field(default_factory=lambda: MappingProxyType({}))

    def role_in(self, space_id: str) -> Role | None:
        return higher(self.every, self.spaces.get(space_id))

    @property
    def reach(self) -> frozenset[str] | None:
        """The spaces any role reaches; None: every space."""
        return None if self.every is not None else frozenset(self.spaces)

    @property
    def empty(self) -> bool:
        return self.every is None and not self.spaces

    def listed(self) -> list[tuple[str, Role]]:
        """The named spaces with their role (a `*` role raised into each), sorted by space."""
        return [(space, self.role_in(space) or role) for space, role in sorted(self.spaces.items())]


EVERYTHING = Rights(every="admin")
NOTHING = Rights()


def everywhere(role: Role) -> Rights:
    return Rights(every=role)


def in_spaces(spaces: Iterable[str], role: Role) -> Rights:
    return Rights(spaces=MappingProxyType(dict.fromkeys(spaces, role)))


@dataclass(frozen=True)
class Rule:
    group: str
    spaces: frozenset[str] | None  # None: every space
    role: Role


@dataclass(frozen=True)
class AccessRules:
    rules: tuple[Rule, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.rules)

    def rights_for(self, groups: Iterable[str]) -> Rights:
        """The union of the rules of `groups`: per space, the highest role."""
        mine = {g.casefold() for g in groups}
        every: Role | None = None
        spaces: dict[str, Role] = {}
        for rule in self.rules:
            if rule.group.casefold() not in mine:
                continue
            if rule.spaces is None:
                every = higher(every, rule.role)
                continue
            for space in rule.spaces:
                spaces[space] = higher(spaces.get(space), rule.role) or rule.role
        return Rights(every, MappingProxyType(spaces))

    @property
    def groups(self) -> frozenset[str]:
        return frozenset(rule.group for rule in self.rules)

    def describe(self) -> list[str]:
        """Each rule in words, for the start-up log."""
        return [
            f"group {r.group!r}: {r.role} in " + ("every space" if r.spaces is None else ", ".join(sorted(r.spaces)))
            for r in self.rules
        ]


def parse_access_rules(raw: str) -> AccessRules:
    """The rules `raw` configures; empty when it is unset or blank (the caller decides whether
    sign-in may start without any)."""
    if not raw.strip():
        return AccessRules()
    rules: list[Rule] = []
    seen: dict[tuple[str, str], tuple[int, str]] = {}
    for n, entry in enumerate(raw.split(","), start=1):
        rule = _parse_rule(entry.strip(), n)
        for space in sorted(rule.spaces) if rule.spaces is not None else [EVERY_SPACE]:
            # directories compare group names without case: 'Staff' and 'staff' are one group there
            key = (rule.group.casefold(), space)
            if key in seen:
                first, name = seen[key]
                same = (
                    f"group {name!r}"
                    if name == rule.group
                    else f"groups {name!r} and {rule.group!r} (one group to a directory)"
                )
                raise RulesConfigError(
                    f"ACCESS_RULES rules {first} and {n} both give {same} a role in "
                    f"{'every space' if space == EVERY_SPACE else repr(space)}: give each group one role per space "
                    "(a person's rights are already the union of their groups' rules)"
                )
            seen[key] = (n, rule.group)
        rules.append(rule)
    return AccessRules(tuple(rules))


def _parse_rule(entry: str, n: int) -> Rule:
    where = f"ACCESS_RULES rule {n}"
    if not entry:
        raise RulesConfigError(f"{where} is empty (two commas in a row, or one at an end); remove it, or {_HOW}")
    parts = entry.rsplit(":", 2)
    if len(parts) != 3:
        raise RulesConfigError(f"{where} ({entry!r}) is not GROUP:SPACES:ROLE; {_HOW}")
    group, scope, role = (p.strip() for p in parts)
    if not group:
        raise RulesConfigError(f"{where} names no group; {_HOW}")
    if any(ch in group for ch in ",|") or not group.isprintable():
        raise RulesConfigError(f"{where}: the group {group!r} contains ',', '|' or a control character; {_HOW}")
    if role not in ROLES:
        raise RulesConfigError(f"{where}: the role {role!r} is not one of reader, editor, admin; {_HOW}")
    return Rule(group, _parse_spaces(scope, where), role)  # type: ignore[arg-type]


def _parse_spaces(scope: str, where: str) -> frozenset[str] | None:
    if scope == EVERY_SPACE:
        return None
    spaces = [s.strip() for s in scope.split("|")]
    if not scope or "" in spaces:
        raise RulesConfigError(f"{where} names an empty space (nothing between ':' or beside '|'); {_HOW}")
    if EVERY_SPACE in spaces:
        raise RulesConfigError(f"{where}: '*' (every space) stands alone, not among other spaces")
    for space in spaces:
        if not is_space_id(space):
            raise RulesConfigError(f"{where}: {space!r} is not a space id (1-64 of A-Z, a-z, 0-9, _ and -)")
    if len(set(spaces)) != len(spaces):
        raise RulesConfigError(f"{where} names a space twice; name each space once")
    return frozenset(spaces)
