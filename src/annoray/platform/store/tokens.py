"""API tokens: random, shown once, stored only as a SHA-256 digest.

Tokens carry 256 bits of entropy, so a fast digest is enough (no password stretching needed)
and lets a token be looked up by its hash in one indexed query.
"""

from __future__ import annotations

import hashlib
import secrets

TOKEN_PREFIX = "ar_"


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
