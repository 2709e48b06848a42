"""Regex and dictionary rules, defined once and reusable by every project whose config opts in."""

from __future__ import annotations

from typing import Any

import re2
from sqlalchemy.orm import Session

from annoray.platform.errors import Conflict, ErrorDetail, Errors, InvalidInput
from annoray.platform.store.repositories import RuleRepository
from annoray.platform.store.tables import Rule, User

KINDS = ("regex", "dictionary")
MAX_PATTERN = 2000
MAX_TERMS, MAX_TERM_LENGTH = 50_000, 200
"""A dictionary past these is a model, not a rule: a server loads every term of every rule into memory."""


def compile_regex(pattern: str) -> Any:
    """A rule's pattern compiled by RE2, which matches in time linear in the text whatever the pattern, so no rule
    can hang a replica; patterns that need backtracking (backreferences, lookaround) raise ``re2.error``."""
    options = re2.Options()
    options.log_errors = False
    return re2.compile(pattern, options)


def _why(exc: Exception) -> str:
    why = exc.args[0] if exc.args else exc
    return why.decode(errors="replace") if isinstance(why, bytes) else str(why)


def create_rule(session: Session, *, name: str, label: str, kind: str, pattern: str | None, terms: list[str] | None,
                user: User | None) -> Rule:
    """Check a rule whole (the regex compiles, a dictionary has terms) and store it under a unique name."""
    errors = []
    if kind not in KINDS:
        errors.append(ErrorDetail(Errors.E111.format(attr="kind", value=kind, allowed=", ".join(KINDS)), field="kind"))
    elif kind == "regex":
        if not pattern:
            errors.append(ErrorDetail(Errors.E812.format(kind=kind, needs="a non-empty 'pattern'"), field="pattern"))
        elif len(pattern) > MAX_PATTERN:
            errors.append(ErrorDetail(Errors.E819.format(length=len(pattern), limit=MAX_PATTERN), field="pattern"))
        else:
            try:
                if compile_regex(pattern).fullmatch("") is not None:
                    errors.append(ErrorDetail(Errors.E812.format(kind=kind, needs="a pattern that cannot match empty text"), field="pattern"))
            except re2.error as exc:
                errors.append(ErrorDetail(Errors.E811.format(why=_why(exc)), field="pattern"))
    elif not terms or not all(isinstance(t, str) and t.strip() for t in terms):
        errors.append(ErrorDetail(Errors.E812.format(kind=kind, needs="a non-empty list of non-empty 'terms'"), field="terms"))
    elif len(terms) > MAX_TERMS or max(map(len, terms)) > MAX_TERM_LENGTH:
        longest = max(map(len, terms))
        errors.append(ErrorDetail(Errors.E818.format(
            limit=MAX_TERMS, length=MAX_TERM_LENGTH, count=len(terms),
            longest=f" and the longest has {longest} characters" if longest > MAX_TERM_LENGTH else ""), field="terms"))
    if errors:
        raise InvalidInput("the rule is not valid", errors)
    repo = RuleRepository(session)
    if repo.by_name(name) is not None:
        raise Conflict(Errors.E810.format(name=name))
    return repo.add(Rule(name=name, label=label, kind=kind, pattern=pattern if kind == "regex" else None,
                         terms=[t.strip() for t in terms or []] if kind == "dictionary" else [],
                         created_by=user.id if user else None))
