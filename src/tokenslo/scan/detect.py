"""The detection core: text in, findings out — no files, no clock, no printing.

Every finding names the secret only by a fingerprint, the first 12 hex digits of its
SHA-256 (of a JWT's canonical, low-S form: the same name the lab's IdP and gateway logs
give a token, whichever ECDSA twin leaked, so a leaked token can be looked up there);
the value itself never leaves this module.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from tokenslo.jws import token_fingerprint
from tokenslo.scan.secrets import JWT_KIND, Detector, Hit, detector
from tokenslo.scan.tokens import (
    EXPIRED,
    VALID,
    JwtState,
    bearer_tokens,
    jwt_claims,
    jwt_state,
    whole_jwt,
)

JWT, BEARER = "jwt", "bearer token"


@dataclass(frozen=True)
class Finding:
    """One secret on one line, named by ``fingerprint``; ``jwt`` only for JWTs."""

    file: str
    line: int
    kind: str
    fingerprint: str
    jwt: JwtState | None = None

    def text(self) -> str:
        """``file:line: kind (state) sha256:…`` — the one-line form of the command."""
        where = f"{self.file}:{self.line}: {self.kind}"
        return f"{where}{_state(self.jwt)} sha256:{self.fingerprint}"

    def as_json(self) -> dict[str, Any]:
        """The same fields flat; ``status`` and ``expires`` are ``null`` for non-JWTs."""
        state = asdict(self.jwt) if self.jwt else {"status": None, "expires": None}
        return (
            {"file": self.file, "line": self.line, "kind": self.kind}
            | state
            | {"fingerprint": self.fingerprint}
        )


def _state(jwt: JwtState | None) -> str:
    if jwt is None:
        return ""
    if jwt.status == VALID:
        return f" (valid until {jwt.expires})"
    if jwt.status == EXPIRED:
        return f" (expired at {jwt.expires})"
    return f" ({jwt.status})"


def fingerprint(secret: str) -> str:
    """A short, non-reversible name for a secret (a JWS: that of its canonical form)."""
    return token_fingerprint(secret)


def scan_texts(texts: Iterable[tuple[str, str]], now: datetime) -> list[Finding]:
    """Findings in each ``(name, text)``, in the order of ``texts`` and then by line;
    JWTs judged at ``now``. ``texts`` may be a generator reading files: it is consumed once."""
    findings: list[Finding] = []
    with detector() as detect:
        for name, text in texts:
            findings.extend(scan_text(name, text, now, detect))
    return findings


def scan_text(name: str, text: str, now: datetime, detect: Detector) -> list[Finding]:
    """Findings in one text; ``name`` picks detect-secrets' rules for its file type."""
    lines = [line.rstrip("\r") for line in text.split("\n")]
    hits = list(detect(name, lines))
    # JWT candidates first, then bearer headers, then the generic kinds: a value caught
    # twice on one line is reported once, as the kind that says the most about it.
    ordered = [h for h in hits if h.kind == JWT_KIND]
    ordered += [Hit(n, BEARER, v) for n, line in enumerate(lines, 1) for v in bearer_tokens(line)]
    ordered += [h for h in hits if h.kind != JWT_KIND]
    found: dict[tuple[int, str], Finding] = {}
    for hit in ordered:
        finding = _finding(name, lines[hit.line - 1], hit, now)
        if finding is not None:
            found.setdefault((finding.line, finding.fingerprint), finding)
    return sorted(found.values(), key=lambda f: (f.line, f.kind, f.fingerprint))


def _finding(name: str, line: str, hit: Hit, now: datetime) -> Finding | None:
    """The finding of one hit: any value that is a JWT is judged as one; detect-secrets'
    JWT candidates that are not (no ``alg``) are dropped."""
    value = whole_jwt(line, hit.value) if hit.kind == JWT_KIND else hit.value
    try:
        claims = jwt_claims(value)
    except ValueError:
        if hit.kind == JWT_KIND:
            return None
        return Finding(name, hit.line, hit.kind.lower(), fingerprint(value))
    return Finding(name, hit.line, JWT, fingerprint(value), jwt_state(claims, now))
