"""People as their directory or provider last described them, in the shared database: what a
session or a personal token acts with between refreshes, and what a refresh updates."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from sqlalchemy import Connection, select, update
from sqlalchemy.exc import IntegrityError

from docassist.pipelines.identity.oidc import Grant
from docassist.pipelines.identity.people import Person
from docassist.pipelines.storage.database import Database
from docassist.pipelines.storage.tables import people


@dataclass(frozen=True)
class Known:
    """A person with when they were last read from their source and how that went."""

    person: Person
    refreshed_at: float
    refresh_failures: int
    active: bool
    grant: Grant | None


class PeopleStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def signed_in(self, person: Person, grant: Grant | None = None, conn: Connection | None = None) -> None:
        """Record `person` as the source just described them (a sign-in); in `conn`'s transaction if given."""
        now = time.time()
        values = {
            "source": person.source,
            "login": person.login,
            "name": person.name,
            "groups": json.dumps(list(person.groups)),
            "grant": _grant_json(grant),
            "refreshed_at": now,
            "refresh_failures": 0,
            "active": 1,
        }
        with self.db.within(conn) as conn:
            done = conn.execute(update(people).where(people.c.person_id == person.person_id).values(values))
            if done.rowcount == 0:
                try:
                    with conn.begin_nested():
                        conn.execute(people.insert().values(person_id=person.person_id, created_at=now, **values))
                except IntegrityError:  # another backend recorded the same person's sign-in just now
                    conn.execute(update(people).where(people.c.person_id == person.person_id).values(values))

    def get(self, person_id: str) -> Known | None:
        with self.db.begin() as conn:
            row = conn.execute(select(people).where(people.c.person_id == person_id)).first()
        if row is None:
            return None
        person = Person(row.person_id, row.login, row.name, tuple(json.loads(row.groups)), row.source)
        grant = Grant(**json.loads(row.grant)) if row.grant else None
        return Known(person, row.refreshed_at, row.refresh_failures, bool(row.active), grant)

    def refreshed(self, person: Person, grant: Grant | None) -> None:
        """A refresh read `person` again: their groups now, failures forgotten."""
        values = {"name": person.name, "groups": json.dumps(list(person.groups)), "refreshed_at": time.time()}
        values |= {"refresh_failures": 0, "active": 1}
        if grant is not None:
            values["grant"] = _grant_json(grant)
        with self.db.begin() as conn:
            conn.execute(update(people).where(people.c.person_id == person.person_id).values(values))

    def gone(self, person_id: str) -> None:
        """The source no longer knows the person, or disabled them: nothing acts as them any more."""
        with self.db.begin() as conn:
            conn.execute(
                update(people)
                .where(people.c.person_id == person_id)
                .values(active=0, grant=None, refreshed_at=time.time())
            )

    def refresh_failed(self, person_id: str) -> int:
        """One more refresh in a row that could not reach the source; the count now. The next
        attempt waits a refresh interval, as after a success."""
        with self.db.begin() as conn:
            conn.execute(
                update(people)
                .where(people.c.person_id == person_id)
                .values(refresh_failures=people.c.refresh_failures + 1, refreshed_at=time.time())
            )
            return conn.execute(select(people.c.refresh_failures).where(people.c.person_id == person_id)).scalar() or 0


def _grant_json(grant: Grant | None) -> str | None:
    if grant is None:
        return None
    return json.dumps(
        {"refresh_token": grant.refresh_token, "access_token": grant.access_token, "expires_at": grant.expires_at}
    )
