"""Regex and dictionary rules, defined once and reusable by every project whose config opts in."""

from __future__ import annotations

import re

from sqlalchemy.orm import Session

from annoray.platform.errors import Conflict, ErrorDetail, Errors, InvalidInput
from annoray.platform.store.repositories import RuleRepository
from annoray.platform.store.tables import Rule, User

KINDS = ("regex", "dictionary")


def create_rule(session: Session, *, name: str, label: str, kind: str, pattern: str | None, terms: list[str] | None,
                user: User | None) -> Rule:
    """Check a rule whole (the regex compiles, a dictionary has terms) and store it under a unique name."""
    errors = []
    if kind not in KINDS:
        errors.append(ErrorDetail(Errors.E111.format(attr="kind", value=kind, allowed=", ".join(KINDS)), field="kind"))
    elif kind == "regex":
        if not pattern:
            errors.append(ErrorDetail(Errors.E812.format(kind=kind, needs="a non-empty 'pattern'"), field="pattern"))
        else:
            try:
                if re.compile(pattern).fullmatch("") is not None:
                    errors.append(ErrorDetail(Errors.E812.format(kind=kind, needs="a pattern that cannot match empty text"), field="pattern"))
            except re.error as exc:
                errors.append(ErrorDetail(Errors.E811.format(why=exc), field="pattern"))
    elif not terms or not all(isinstance(t, str) and t.strip() for t in terms):
        errors.append(ErrorDetail(Errors.E812.format(kind=kind, needs="a non-empty list of non-empty 'terms'"), field="terms"))
    if errors:
        raise InvalidInput("the rule is not valid", errors)
    repo = RuleRepository(session)
    if repo.by_name(name) is not None:
        raise Conflict(Errors.E810.format(name=name))
    return repo.add(Rule(name=name, label=label, kind=kind, pattern=pattern if kind == "regex" else None,
                         terms=[t.strip() for t in terms or []] if kind == "dictionary" else [],
                         created_by=user.id if user else None))
