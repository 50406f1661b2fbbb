"""Who may do what: keys and scoped tokens become an Access; every route declares the rule it needs."""

from __future__ import annotations

import hmac
import logging
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import jwt
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError
from starlette.types import Receive, Scope, Send

from app.api.errors import umbrella_error_response
from app.core.errors import Forbidden
from app.schemas.common import ErrorResponse

log = logging.getLogger(__name__)

Level = Literal["r", "rw"]
# open: anyone, even without a key · listed: any caller with a valid key (answers are filtered to what it
# may read) · read / write: the collection named in the path · manage: create, drop, restore · metrics: /metrics
Rule = Literal["open", "listed", "read", "write", "manage", "metrics"]
RULES: tuple[Rule, ...] = ("open", "listed", "read", "write", "manage", "metrics")
SCOPE_KEY = "umbrella.access"  # where the guard leaves the caller's Access in the ASGI scope
_RULE_KEY = "x-umbrella-access"  # the OpenAPI extension a route declares its rule in (and the docs show)


@dataclass(frozen=True)
class Access:
    """What one caller may do: a level on every collection and/or per collection, plus the global powers."""

    everything: Level | None = None
    collections: Mapping[str, Level] = field(default_factory=dict)
    manage: bool = False
    metrics: bool = False

    def can(self, level: Level, collection: str) -> bool:
        granted = self.everything or self.collections.get(collection)
        return granted == "rw" or granted == level

    def allows(self, rule: Rule, collection: str | None) -> bool:
        if rule in ("open", "listed"):
            return True
        if rule in ("read", "write"):
            return collection is not None and self.can("r" if rule == "read" else "rw", collection)
        return self.manage if rule == "manage" else self.metrics


ADMIN = Access("rw", manage=True, metrics=True)
READ_ONLY = Access("r", metrics=True)
ANONYMOUS = Access()


class Grant(BaseModel):
    model_config = ConfigDict(extra="forbid")
    collection: str
    access: Level


_CLAIM = TypeAdapter(Level | list[Grant])


class Unauthenticated(Exception):
    """A credential was sent and is not valid (its message says why, without revealing any key)."""


def _token_access(claim: Level | list[Grant]) -> Access:
    if claim == "rw":
        return Access("rw", manage=True, metrics=True)  # a global read-write token is an admin
    if claim == "r":
        return Access("r")
    grants: dict[str, Level] = {}
    for grant in claim:  # a collection named twice keeps its widest grant
        grants[grant.collection] = "rw" if "rw" in (grants.get(grant.collection), grant.access) else "r"
    return Access(collections=grants)


class Keys:
    """Turns the credential of a request into an Access: the admin key, the read-only key, or a JWT
    (HS256, signed with the admin key) whose `access` claim scopes it to all or some collections."""

    def __init__(self, admin_key: str | None, read_only_key: str | None) -> None:
        self.admin = admin_key.encode() if admin_key else None  # also the HS256 secret of the tokens
        self.read_only = read_only_key.encode() if read_only_key else None
        # PyJWT warns on every decode with a key under 32 bytes; the server says it once, at start.
        warnings.filterwarnings("ignore", category=jwt.warnings.InsecureKeyLengthWarning)
        if admin_key and len(admin_key.encode()) < 32:
            log.warning("UMBRELLA_API_KEY is shorter than 32 bytes: tokens signed with it are easier to forge")

    def access_of(self, credential: bytes | None) -> Access:
        """The caller's Access (ANONYMOUS without a credential); Unauthenticated for a wrong one."""
        if self.admin is None:  # no admin key: a development server on loopback, every caller an admin
            return ADMIN
        if not credential:
            return ANONYMOUS
        if hmac.compare_digest(credential, self.admin):
            return ADMIN
        if self.read_only is not None and hmac.compare_digest(credential, self.read_only):
            return READ_ONLY
        if credential.count(b".") != 2:
            raise Unauthenticated("wrong api key")
        return self._token(credential.decode("ascii", "replace"))

    def _token(self, token: str) -> Access:
        try:
            claims = jwt.decode(token, self.admin, algorithms=["HS256"], options={"require": ["access"]})
            return _token_access(_CLAIM.validate_python(claims["access"]))
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("token expired") from None
        except jwt.MissingRequiredClaimError:
            raise Unauthenticated('token has no "access" claim') from None
        except ValidationError:
            raise Unauthenticated(
                'token\'s "access" claim must be "r", "rw" or a list of {"collection", "access"}'
            ) from None
        except jwt.InvalidTokenError:
            raise Unauthenticated("invalid token (bad signature, algorithm or format)") from None


def credential_of(headers: Mapping[bytes, bytes]) -> bytes | None:
    """The `api-key` header, or `Authorization: Bearer <credential>` (only with the Bearer prefix)."""
    if key := headers.get(b"api-key"):
        return key
    authorization = headers.get(b"authorization", b"")
    return authorization[7:].strip() if authorization[:7].lower() == b"bearer " else None


def needs(rule: Rule) -> dict[str, Any]:
    """A route's declaration of who may call it: `@router.get(..., openapi_extra=needs("read"))`."""
    return {_RULE_KEY: rule}


_MEANING = {
    400: "Invalid input (the error's code says which rule it broke).",
    401: "No credential, or a wrong key or a bad or expired token.",
    403: "A valid credential that does not cover this collection or operation.",
    404: "The collection (or the point, user, ranker or snapshot) does not exist.",
    409: "Conflicts with the current state (the error's code says which).",
    413: "The body or a batch is larger than the server takes.",
    422: "The request does not match the schema.",
    429: "Too much work is waiting; retry after Retry-After seconds.",
    503: "Not ready yet (a graph being built, a model shutting down).",
    507: "The server's disk is full: nothing of the write was kept; reads go on.",
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI responses for these error statuses, each with the error envelope."""
    return {status: {"model": ErrorResponse, "description": _MEANING[status]} for status in sorted(statuses)}


class GuardedRoute(APIRoute):
    """An APIRoute that refuses (403) a caller whose Access does not satisfy the route's rule, before any
    parsing or lookup (so a scoped token learns nothing about collections outside its scope). A route that
    declares no rule cannot be built: nothing is reachable by omission."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        rule = (self.openapi_extra or {}).get(_RULE_KEY)
        if rule not in RULES:
            raise ValueError(f"route {path} declares no access rule: add openapi_extra=needs(...)")
        if rule in ("read", "write") and "{name}" not in path:
            raise ValueError(f"route {path}: a {rule} rule needs a collection {{name}} in the path")
        self.rule: Rule = rule
        self.responses = {**self._common_errors(), **self.responses}

    def _common_errors(self) -> dict[int | str, dict[str, Any]]:
        """The statuses every route like this one can answer, documented with the error envelope; a route
        declares the ones of its own work (409, 429, 503, a 400 without a body) with `errors(...)`."""
        statuses = {401} if self.rule != "open" else set()
        statuses |= {403} if self.rule not in ("open", "listed") else set()
        statuses |= {404} if "{" in self.path else set()
        statuses |= {400, 413, 422} if self.methods & {"POST", "PUT"} else set()  # a body: unreadable, too big
        statuses |= {422} if "{" in self.path or self.dependant.query_params else set()
        statuses |= {507} if self.rule in ("write", "manage") else set()  # a full disk keeps nothing
        return errors(*statuses)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.rule != "open":
            access: Access = scope.get(SCOPE_KEY, ANONYMOUS)
            name = scope.get("path_params", {}).get("name")
            if not access.allows(self.rule, name):
                what = f"collection {name!r}" if self.rule in ("read", "write") else "this operation"
                verb = {"read": "read", "write": "change"}.get(self.rule, "perform")
                await umbrella_error_response(Forbidden(f"this key may not {verb} {what}"))(scope, receive, send)
                return
        await super().handle(scope, receive, send)
