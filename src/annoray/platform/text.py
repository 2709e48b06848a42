"""Text annoray refuses to store, whatever the route: NUL characters (PostgreSQL cannot hold them) and unpaired
UTF-16 surrogates (no UTF-8 encoding exists for them, so nothing downstream could write them out)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def text_problem(text: str) -> str | None:
    """What is wrong with ``text`` as stored text, or None."""
    if "\x00" in text:
        return "a NUL character"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        return f"an unpaired surrogate at character {e.start}"
    return None


def nodes(value: Any, where: str = "body") -> Iterator[tuple[str, Any, int]]:
    """Every node of a JSON value (keys as strings too) with where it is (``body.data.text``) and its depth."""
    stack = [(value, where, 0)]
    while stack:
        v, at, depth = stack.pop()
        yield at, v, depth
        if isinstance(v, dict):
            for k, child in v.items():
                yield at, str(k), depth + 1
                stack.append((child, f"{at}.{k}", depth + 1))
        elif isinstance(v, list):
            stack.extend((child, f"{at}[{i}]", depth + 1) for i, child in enumerate(v))


def first_text_problem(value: Any, where: str = "body") -> tuple[str, str] | None:
    """Where the first string of a JSON value that annoray would refuse is, and what is wrong with it."""
    for at, v, _ in nodes(value, where):
        if isinstance(v, str) and (problem := text_problem(v)) is not None:
            return at, problem
    return None
