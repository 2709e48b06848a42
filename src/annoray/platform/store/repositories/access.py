"""Rules, licenses with their leased seats, dashboard sessions, and teams with what their projects run."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from annoray.platform.store.repositories.base import RowRepository, aware
from annoray.platform.lifecycle import HOLDING, JobStatus
from annoray.platform.store.tables import (
    ApiToken, AuditEvent, License, LicenseLease, PreannotationServer, Project, Rule, Team, TrainingJob, User, WebSession,
)
from annoray.platform.store.tokens import hash_token


class RuleRepository(RowRepository[Rule]):
    row, noun = Rule, "rule"

    def all(self) -> Sequence[Rule]:
        return self.session.scalars(select(Rule).order_by(Rule.name)).all()

    def by_names(self, names: Sequence[str]) -> Sequence[Rule]:
        return self.session.scalars(select(Rule).where(Rule.name.in_(list(names))).order_by(Rule.name)).all()

    def by_name(self, name: str) -> Rule | None:
        return self.session.scalars(select(Rule).where(Rule.name == name)).first()


class LicenseRepository(RowRepository[License]):
    row, noun = License, "license"

    def by_key(self, key: str) -> License | None:
        return self.session.scalars(select(License).where(License.license_key == key)).first()

    def delete(self, license: License) -> None:
        self.session.delete(license)
        self.session.flush()

    def leased(self) -> dict[int, int]:
        """Seats leased now, per license id."""
        rows = self.session.execute(
            select(LicenseLease.license_id, func.count()).where(LicenseLease.released_at.is_(None))
            .group_by(LicenseLease.license_id)
        )
        return {license_id: count for license_id, count in rows}

    def active(self, license_id: int | None = None, *, holder_kind: str | None = None,
               holder_id: int | None = None) -> Sequence[LicenseLease]:
        """Seats leased now: of one license, of one kind of holder, or of one holder."""
        query = select(LicenseLease).where(LicenseLease.released_at.is_(None)).order_by(LicenseLease.id)
        if license_id is not None:
            query = query.where(LicenseLease.license_id == license_id)
        if holder_kind is not None:
            query = query.where(LicenseLease.holder_kind == holder_kind)
        if holder_id is not None:
            query = query.where(LicenseLease.holder_id == holder_id)
        return self.session.scalars(query).all()

    def seats_by_holder(self, holder_kind: str) -> dict[int, tuple[tuple[str, int], ...]]:
        """The (scope, license id) seats each holder of one kind has leased now."""
        seats: dict[int, list[tuple[str, int]]] = {}
        for lease in self.active(holder_kind=holder_kind):
            seats.setdefault(lease.holder_id, []).append((lease.scope, lease.license_id))
        return {holder: tuple(held) for holder, held in seats.items()}

    def unexpired(self, now: datetime) -> Sequence[License]:
        return self.session.scalars(select(License).where(License.expires_at > now).order_by(License.expires_at, License.id)).all()

    def lease(self, license_id: int, scope: str, holder_kind: str, holder_id: int, now: datetime) -> bool:
        """Lease one seat if the license is still installed, unexpired and has one free; False otherwise."""
        license = self.session.scalars(select(License).where(License.id == license_id).with_for_update()).first()
        if license is None or aware(license.expires_at) <= now:
            return False
        if self.leased().get(license_id, 0) >= license.seats:
            return False
        self.session.add(LicenseLease(license_id=license_id, scope=scope, holder_kind=holder_kind, holder_id=holder_id, leased_at=now))
        self.session.flush()
        return True

    def lease_all(self, leases: Sequence[tuple[str, int]], holder_kind: str, holder_id: int, now: datetime) -> bool:
        """Lease every (scope, license id) seat for one holder; False as soon as one cannot be had."""
        return all(self.lease(license_id, scope, holder_kind, holder_id, now) for scope, license_id in leases)

    def release(self, holder_kind: str, holder_id: int) -> None:
        self.session.execute(
            update(LicenseLease).where(LicenseLease.holder_kind == holder_kind, LicenseLease.holder_id == holder_id,
                                       LicenseLease.released_at.is_(None)).values(released_at=datetime.now(UTC))
        )

    def release_all_but(self, holder_kind: str, live: Sequence[int]) -> int:
        """Return the seats of every ``holder_kind`` holder not in ``live`` (holders that ended without returning them)."""
        done = self.session.execute(
            update(LicenseLease).where(LicenseLease.holder_kind == holder_kind, LicenseLease.released_at.is_(None),
                                       LicenseLease.holder_id.not_in(list(live))).values(released_at=datetime.now(UTC))
        )
        return done.rowcount  # type: ignore[attr-defined]


class WebSessionRepository:
    """Dashboard sessions by the key their cookie carries (stored hashed, like API tokens)."""

    def __init__(self, session: Session):
        self.session = session

    def add(self, key: str, user_id: int, csrf: str, expires_at: datetime, *, one_time: bool = False) -> WebSession:
        row = WebSession(key_hash=hash_token(key), user_id=user_id, csrf=csrf, expires_at=expires_at, one_time=one_time)
        self.session.add(row)
        self.session.flush()
        return row

    def live(self, key: str, now: datetime) -> tuple[WebSession, User] | None:
        """The session of ``key`` and its user, unless it expired."""
        found = self.session.execute(select(WebSession, User).join(User, User.id == WebSession.user_id)
                                     .where(WebSession.key_hash == hash_token(key))).first()
        if found is None or found[0].one_time or aware(found[0].expires_at) <= now or not found[1].active:
            return None
        return found[0], found[1]

    def redeem(self, code: str, now: datetime) -> int | None:
        """The user of a one-time sign-in link, which is gone once read (None when unknown, used or expired)."""
        found = self.session.execute(delete(WebSession).where(WebSession.key_hash == hash_token(code), WebSession.one_time.is_(True))
                                     .returning(WebSession.user_id, WebSession.expires_at)).first()
        return found[0] if found is not None and aware(found[1]) > now else None

    def end(self, key: str) -> None:
        self.session.execute(delete(WebSession).where(WebSession.key_hash == hash_token(key)))

    def end_expired(self, now: datetime) -> None:
        self.session.execute(delete(WebSession).where(WebSession.expires_at <= now))

    def end_all(self, user_id: int) -> None:
        """Every session and sign-in link of a user."""
        self.session.execute(delete(WebSession).where(WebSession.user_id == user_id))


class ApiTokenRepository(RowRepository[ApiToken]):
    row, noun = ApiToken, "token"

    def by_secret(self, token: str) -> tuple[ApiToken, User] | None:
        found = self.session.execute(select(ApiToken, User).join(User, User.id == ApiToken.user_id)
                                     .where(ApiToken.token_hash == hash_token(token))).first()
        return None if found is None else (found[0], found[1])

    def of_user(self, user_id: int | None) -> Sequence[tuple[ApiToken, str]]:
        """Tokens with their user's name, newest first; every user's when ``user_id`` is None."""
        query = select(ApiToken, User.username).join(User, User.id == ApiToken.user_id).order_by(ApiToken.id.desc())
        if user_id is not None:
            query = query.where(ApiToken.user_id == user_id)
        return [(t, name) for t, name in self.session.execute(query).all()]

    def revoke_all(self, user_id: int, now: datetime) -> None:
        self.session.execute(update(ApiToken).where(ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None))
                             .values(revoked_at=now).execution_options(synchronize_session=False))

    def touch(self, token_id: int, now: datetime, every: timedelta) -> None:
        """Record a use, at most once per ``every`` (a read must not write on each request)."""
        self.session.execute(update(ApiToken).where(
            ApiToken.id == token_id, (ApiToken.last_used_at.is_(None)) | (ApiToken.last_used_at < now - every)
        ).values(last_used_at=now).execution_options(synchronize_session=False))


class AuditRepository(RowRepository[AuditEvent]):
    row, noun = AuditEvent, "audit event"

    def page(self, *, username: str | None = None, method: str | None = None, path: str | None = None,
             outcome: str | None = None, since: datetime | None = None, until: datetime | None = None,
             offset: int = 0, limit: int = 100) -> tuple[Sequence[AuditEvent], int]:
        """Events newest first, filtered, and how many match."""
        query = select(AuditEvent)
        for column, value in ((AuditEvent.username, username), (AuditEvent.method, method), (AuditEvent.outcome, outcome)):
            if value is not None:
                query = query.where(column == value)
        if path is not None:
            query = query.where(AuditEvent.path.startswith(path, autoescape=True))
        if since is not None:
            query = query.where(AuditEvent.at >= since)
        if until is not None:
            query = query.where(AuditEvent.at < until)
        total = self.session.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = self.session.scalars(query.order_by(AuditEvent.id.desc()).offset(offset).limit(limit)).all()
        return rows, total


class TeamRepository(RowRepository[Team]):
    row, noun = Team, "team"

    def all(self) -> Sequence[Team]:
        return self.session.scalars(select(Team).order_by(Team.name)).all()

    def by_name(self, name: str) -> Team | None:
        return self.session.scalars(select(Team).where(Team.name == name)).first()

    def delete(self, team: Team) -> None:
        """The team goes; its projects go back to the default team."""
        self.session.execute(update(Project).where(Project.team_id == team.id).values(team_id=None))
        self.session.delete(team)
        self.session.flush()

    def team_of_projects(self) -> dict[int, str]:
        """The team name of every project in a team (the others are in the default team)."""
        return dict(self.session.execute(select(Project.id, Team.name).join(Team, Team.id == Project.team_id)).tuples().all())

    def projects(self) -> dict[int | None, list[int]]:
        """Project ids per team id (None: the default team)."""
        out: dict[int | None, list[int]] = {}
        for project_id, team_id in self.session.execute(select(Project.id, Project.team_id).order_by(Project.id)):
            out.setdefault(team_id, []).append(project_id)
        return out

    def seats_held(self) -> list[tuple[int | None, str, int]]:
        """(team id, scope, count) of the licence seats held now by the trainings and servers of each team's projects."""
        out = []
        for holder_kind, table in (("training", TrainingJob), ("server", PreannotationServer)):
            out += self.session.execute(
                select(Project.team_id, LicenseLease.scope, func.count())
                .join(table, table.id == LicenseLease.holder_id).join(Project, Project.id == table.project_id)
                .where(LicenseLease.holder_kind == holder_kind, LicenseLease.released_at.is_(None))
                .group_by(Project.team_id, LicenseLease.scope)).tuples().all()
        return out

    def holding(self) -> list[tuple[int | None, dict, int]]:
        """What runs now, per team id: (team id, resources, count) of every running training (count 1) and every
        server that holds its room (its replicas' resources, as many as it may scale to)."""
        trainings = self.session.execute(
            select(Project.team_id, TrainingJob.resources).join(Project, Project.id == TrainingJob.project_id)
            .where(TrainingJob.status == JobStatus.RUNNING))
        servers = self.session.execute(
            select(Project.team_id, PreannotationServer.resources, PreannotationServer.max_replicas)
            .join(Project, Project.id == PreannotationServer.project_id)
            .where(PreannotationServer.status.in_(list(HOLDING))))
        return [(team_id, resources, 1) for team_id, resources in trainings] + [tuple(row) for row in servers]
