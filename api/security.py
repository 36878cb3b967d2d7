"""API keys, roles and the permission matrix; subject pseudonyms; masking.

Keys look like ``wzc_<prefix>_<secret>``: the prefix identifies a key in listings and logs,
and only the SHA-256 of the whole key is stored (a key is 192 random bits, so a plain
digest is as good as a slow hash and keeps authentication to one indexed lookup).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from enum import StrEnum

KEY_PREFIX = "wzc"


class Role(StrEnum):
    """The five roles; each key has exactly one."""

    UNDERWRITER = "underwriter"  # bank credit officer (鹿城农商行)
    REGULATOR = "regulator"  # 市场监管 / 发改委 credit office
    ANALYST = "analyst"  # model and portfolio analyst
    SUBJECT = "subject"  # an enterprise or person, about themselves only
    ADMIN = "admin"  # platform operator


class Permission(StrEnum):
    SCORE_ENTITY = "score:entity"
    SCORE_PERSON = "score:person"
    PREAPPROVAL = "preapproval"
    ELIGIBILITY = "eligibility"
    SUPERVISION = "supervision"
    POLICY = "policy"
    CONSENT_WRITE = "consent:write"
    CONSENT_READ = "consent:read"
    OBJECTION_RAISE = "objection:raise"
    OBJECTION_READ = "objection:read"
    OBJECTION_RESOLVE = "objection:resolve"
    REPAIR_APPLY = "repair:apply"
    REPAIR_READ = "repair:read"
    REPAIR_DECIDE = "repair:decide"
    OWN_REPORT = "report:own"
    AUDIT_READ = "audit:read"


U, R, A, S, D = Role.UNDERWRITER, Role.REGULATOR, Role.ANALYST, Role.SUBJECT, Role.ADMIN

#: which roles hold each permission: the one place access is decided (tests walk it)
PERMISSIONS: dict[Permission, frozenset[Role]] = {
    Permission.SCORE_ENTITY: frozenset({U, R, A, S}),
    Permission.SCORE_PERSON: frozenset({U, S}),
    Permission.PREAPPROVAL: frozenset({U}),
    Permission.ELIGIBILITY: frozenset({U, R}),
    Permission.SUPERVISION: frozenset({R, A}),
    Permission.POLICY: frozenset({U, R, A, D}),
    Permission.CONSENT_WRITE: frozenset({U, S}),
    Permission.CONSENT_READ: frozenset({U, S, D}),
    Permission.OBJECTION_RAISE: frozenset({S}),
    Permission.OBJECTION_READ: frozenset({S, D}),
    Permission.OBJECTION_RESOLVE: frozenset({D}),
    Permission.REPAIR_APPLY: frozenset({S}),
    Permission.REPAIR_READ: frozenset({S, D}),
    Permission.REPAIR_DECIDE: frozenset({D}),
    Permission.OWN_REPORT: frozenset({S}),
    Permission.AUDIT_READ: frozenset({D}),
}


def allowed(role: Role, permission: Permission) -> bool:
    return role in PERMISSIONS[permission]


def new_key() -> tuple[str, str]:
    """A fresh key and its prefix: ``(key, prefix)``; the key is shown once, never stored."""
    prefix = secrets.token_hex(4)
    return f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(24)}", prefix


def key_hash(key: str) -> str:
    """What is stored of a key: its SHA-256, hex."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def subject_ref(secret: str, subject_id: str) -> str:
    """The pseudonym of a subject (USCC or resident ID) in logs: HMAC-SHA256, hex.

    >>> subject_ref("s" * 16, "91330302MA2CXXXX0X") == subject_ref("s" * 16, "91330302ma2cxxxx0x")
    True
    """
    normalised = subject_id.strip().upper()
    return hmac.new(secret.encode("utf-8"), normalised.encode("utf-8"), "sha256").hexdigest()


def mask_resident_id(value: str | None) -> str | None:
    """Keep the area code and the last four characters: ``330302********123X``.

    >>> mask_resident_id("33030219900101123X")
    '330302********123X'
    """
    if not value:
        return value
    return value[:6] + "*" * (len(value) - 10) + value[-4:] if len(value) > 10 else "*" * 6


def mask_name(value: str | None) -> str | None:
    """Keep the family name only: ``张**``.

    >>> mask_name("张三丰")
    '张**'
    """
    if not value:
        return value
    return value[0] + "*" * (len(value) - 1)


def mask_business_name(name: str | None) -> str | None:
    """Mask a 个体工商户's name, which may hold its operator's name.

    A 个体工商户 name is 行政区划 + 字号 + 行业 + 组织形式 (瑞安市丰汇修配部), and an operator's
    name, when used, is the 字号 in the middle, or the whole name when the business has no
    字号. So names of eight or more characters keep their first and last two characters
    (the district and the form), names of five to seven keep one at each end, and shorter
    names (a bare person's name) keep the first only, like `api.security.mask_name`.

    Examples
    --------
    >>> mask_business_name("瑞安市丰汇修配部")
    '瑞安****配部'
    >>> mask_business_name("张三水果店")
    '张***店'
    >>> mask_business_name("张三丰")
    '张**'
    """
    if not name:
        return name
    n = len(name)
    head, tail = (2, 2) if n >= 8 else (1, 1) if n >= 5 else (1, 0)
    return name[:head] + "*" * (n - head - tail) + name[n - tail :]
