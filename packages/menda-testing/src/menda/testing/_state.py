"""The emulator's tenant: identities, the tokens it issued, and what each may use.

:class:`Tenant` is the base of :class:`~menda.testing.emulator.MendaCloudEmulator`;
its public methods are the emulator's identity and token API. Everything here
holds ``self._lock`` (re-entrant) while it reads or changes state.
"""

from __future__ import annotations

import hmac
import secrets
import threading
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta, timezone

from menda.testing._records import MintedRegistryToken, UserLogin
from menda.testing._replies import Refusal
from menda.testing._tokens import (
    DEFAULT_REGISTRY,
    AccessGrant,
    Principal,
    RefreshGrant,
    Registry,
    TokenKind,
    domain_set,
    make_registry_token,
    registry_tuple,
)

__all__ = ["Tenant"]


def _real_now() -> datetime:
    return datetime.now(timezone.utc)


class Tenant:
    """One tenant of menda cloud: its settings, identities and issued tokens."""

    def __init__(
        self,
        *,
        access_token_lifetime: int,
        registry_token_lifetime: int,
        rotate_refresh_tokens: bool,
        clock: Callable[[], datetime] | None,
        registry: Iterable[str],
        app_client_id: str,
        tenant_id: str,
    ) -> None:
        self.access_token_lifetime = access_token_lifetime
        self.registry_token_lifetime = registry_token_lifetime
        self.rotate_refresh_tokens = rotate_refresh_tokens
        self.clock = clock
        self.registry: Registry = registry_tuple(registry) or DEFAULT_REGISTRY
        self.app_client_id = app_client_id
        self.tenant_id = tenant_id
        self._lock = threading.RLock()
        self._principals: dict[str, Principal] = {}
        self._access: dict[str, AccessGrant] = {}
        self._refresh: dict[str, RefreshGrant] = {}
        self._registry_tokens: dict[str, MintedRegistryToken] = {}
        self._revoked_registry: set[str] = set()
        self._registries: set[Registry] = set()

    def now(self) -> datetime:
        """The emulator's current time (its ``clock``, else real time)."""
        return (self.clock or _real_now)()

    # -- identities -------------------------------------------------------------------

    def add_m2m_client(
        self,
        client_id: str,
        client_secret: str,
        *,
        domains: Iterable[str] | None = None,
        registry: Iterable[str] | None = None,
    ) -> None:
        """Register (or replace) an M2M client (a service principal).

        ``domains=None`` allows every CodeArtifact domain; ``registry=(domain, owner,
        region)`` overrides the tenant's registry for this client.
        """
        with self._lock:
            existing = self._principals.get(client_id)
            if existing is not None and existing.kind != "m2m":
                raise ValueError(f"{client_id!r} is already a user name")
            self._principals[client_id] = Principal(
                client_id,
                "m2m",
                client_id,
                client_secret,
                domain_set(domains),
                registry_tuple(registry),
            )

    def add_user(
        self,
        name: str = "alice",
        *,
        client_id: str | None = None,
        domains: Iterable[str] | None = None,
        registry: Iterable[str] | None = None,
        email: str | None = None,
    ) -> UserLogin:
        """Register a U2M user and return a fresh login, as ``menda auth login`` would get.

        The login is bound to ``client_id``, by default the tenant's ``app_client_id``.
        """
        with self._lock:
            if name in self._principals:
                raise ValueError(f"identity {name!r} already exists; use login({name!r})")
            self._principals[name] = Principal(
                name,
                "u2m",
                client_id or self.app_client_id,
                None,
                domain_set(domains),
                registry_tuple(registry),
                email if email is not None else f"{name}@example.com",
            )
            return self.login(name)

    def login(self, name: str) -> UserLogin:
        """Another fresh login (id, access and refresh token) for an existing user."""
        with self._lock:
            principal = self._principal(name)
            if principal.kind != "u2m":
                raise ValueError(f"{name!r} is an M2M client, not a user")
            issued_at = self.now()
            access, expires_at = self._issue(name, "access_token", None, issued_at)
            id_token, _ = self._issue(name, "id_token", None, issued_at)
            refresh = self._mint_refresh(principal)
            return UserLogin(
                name, principal.client_id, access, refresh, expires_at, id_token, issued_at
            )

    def issue_access_token(
        self, identity: str, lifetime: int | None = None
    ) -> tuple[str, datetime]:
        """Mint an access token for a client id or user name, as the token endpoint would."""
        with self._lock:
            return self._issue(identity, "access_token", lifetime, self.now())

    def revoke_access_token(self, token: str) -> None:
        """Revoke an access token or id token."""
        with self._lock:
            grant = self._access.get(token)
            if grant is not None:
                grant.revoked = True

    def revoke_refresh_token(self, token: str) -> None:
        with self._lock:
            grant = self._refresh.get(token)
            if grant is not None:
                grant.revoked = True

    def revoke_registry_token(self, token: str) -> None:
        with self._lock:
            self._revoked_registry.add(token)

    def allow(self, identity: str, domain: str) -> None:
        """Let ``identity`` use CodeArtifact ``domain`` (no-op when it may use every domain)."""
        with self._lock:
            principal = self._principal(identity)
            if principal.domains is not None:
                principal.domains.add(domain)

    def deny(self, identity: str, domain: str) -> None:
        """Forbid ``domain`` to ``identity``; one allowed every domain becomes allowed none."""
        with self._lock:
            principal = self._principal(identity)
            if principal.domains is None:
                principal.domains = set()
            principal.domains.discard(domain)

    def add_registry(self, domain: str, owner: str, region: str) -> None:
        """Declare a registry that exists; once any is declared, an identity whose
        registry is not among them gets 404 from the registry endpoint."""
        with self._lock:
            self._registries.add((domain, owner, region))

    def registry_of(self, identity: str) -> tuple[str, str, str]:
        """``(domain, owner, region)`` of the CodeArtifact registry ``identity`` gets tokens for."""
        with self._lock:
            return self._principal(identity).registry or self.registry

    def _principal(self, identity: str) -> Principal:
        try:
            return self._principals[identity]
        except KeyError:
            raise ValueError(f"unknown identity {identity!r}") from None

    def _issue(
        self, identity: str, kind: TokenKind, lifetime: int | None, issued_at: datetime
    ) -> tuple[str, datetime]:
        self._principal(identity)
        seconds = self.access_token_lifetime if lifetime is None else lifetime
        expires_at = issued_at + timedelta(seconds=seconds)
        token = ("mat_" if kind == "access_token" else "mit_") + secrets.token_urlsafe(24)
        self._access[token] = AccessGrant(identity, kind, expires_at)
        return token, expires_at

    def _mint_refresh(self, principal: Principal) -> str:
        token = "mrt_" + secrets.token_urlsafe(24)
        self._refresh[token] = RefreshGrant(principal.name, principal.client_id)
        return token

    # -- registry tokens --------------------------------------------------------------

    def validate_registry_token(self, token: str, *, domain: str, owner: str, region: str) -> bool:
        """True when this emulator minted ``token`` for that registry and it is still valid."""
        with self._lock:
            minted = self._registry_tokens.get(token)
            if minted is None or token in self._revoked_registry:
                return False
            where = (minted.domain, minted.domain_owner, minted.region)
            return where == (domain, owner, region) and self.now() < minted.expires_at

    @property
    def minted_registry_tokens(self) -> list[MintedRegistryToken]:
        with self._lock:
            return list(self._registry_tokens.values())

    def mint_registry_token(
        self,
        identity: str,
        *,
        domain: str | None = None,
        owner: str | None = None,
        region: str | None = None,
        lifetime: int | None = None,
    ) -> MintedRegistryToken:
        """Mint a registry token directly, as the registry endpoint would for ``identity``.

        The registry defaults to the identity's (the tenant's unless overridden).
        """
        with self._lock:
            default = self.registry_of(identity)
            seconds = self.registry_token_lifetime if lifetime is None else lifetime
            # Whole seconds, as in the token's header: a client must not believe a
            # token outlives what the server granted.
            issued = int(self.now().timestamp())
            token = make_registry_token(issued, issued + seconds)
            minted = MintedRegistryToken(
                token,
                identity,
                domain or default[0],
                owner or default[1],
                region or default[2],
                datetime.fromtimestamp(issued + seconds, timezone.utc),
                datetime.fromtimestamp(issued, timezone.utc),
            )
            self._registry_tokens[token] = minted
            return minted

    # -- what the endpoints ask -------------------------------------------------------

    def authenticate(self, token: str) -> AccessGrant:
        """The grant of a live access or id token; raises a 401 :class:`Refusal` otherwise."""
        with self._lock:
            grant = self._access.get(token)
            if grant is None:
                raise Refusal(401, "invalid token: not one this service issued")
            if grant.revoked:
                raise Refusal(401, "invalid token: it was revoked")
            if self.now() >= grant.expires_at:
                raise Refusal(401, "invalid token: it has expired")
            return grant

    def check_client(self, client_id: str, client_secret: str) -> None:
        """Raise a 401 :class:`Refusal` unless these are a registered M2M client's credentials."""
        with self._lock:
            principal = self._principals.get(client_id)
            if (
                principal is None
                or principal.kind != "m2m"
                or principal.secret is None
                or not hmac.compare_digest(principal.secret.encode(), client_secret.encode())
            ):
                raise Refusal(401, "invalid client credentials: unknown client or wrong secret")

    def is_public_client(self, client_id: str) -> bool:
        """Whether ``client_id`` is the login app's (or some user's) public client id."""
        with self._lock:
            return client_id == self.app_client_id or any(
                p.kind == "u2m" and p.client_id == client_id for p in self._principals.values()
            )

    def use_refresh_token(self, refresh_token: str, client_id: str) -> tuple[UserLogin, bool]:
        """A new login for the owner of ``refresh_token``; and whether it was rotated.

        Raises a 401 :class:`Refusal` for an unknown, revoked or foreign refresh token.
        """
        with self._lock:
            grant = self._refresh.get(refresh_token)
            if grant is None or grant.revoked:
                raise Refusal(401, "invalid refresh token: unknown, expired or revoked")
            if grant.client_id != client_id:
                raise Refusal(401, "invalid refresh token: it was issued to another client")
            login = self.login(grant.identity)
            if self.rotate_refresh_tokens:
                grant.revoked = True
            else:
                # Without rotation the old refresh token stays the only one.
                self._refresh.pop(login.refresh_token, None)
                login = _with_refresh(login, refresh_token)
            return login, self.rotate_refresh_tokens

    def registry_for_exchange(self, identity: str) -> Registry:
        """The registry ``identity`` may get a token for; 403 or 404 :class:`Refusal` otherwise."""
        with self._lock:
            principal = self._principal(identity)
            registry = principal.registry or self.registry
            domain, owner, region = registry
            if self._registries and registry not in self._registries:
                raise Refusal(
                    404, f"no CodeArtifact domain {domain!r} owned by {owner} in {region}"
                )
            if principal.domains is not None and domain not in principal.domains:
                raise Refusal(403, f"{identity!r} may not use CodeArtifact domain {domain!r}")
            return registry

    def principal(self, identity: str) -> Principal:
        with self._lock:
            return self._principal(identity)

    def first_user(self, client_id: str) -> str | None:
        """The first registered user whose logins are bound to ``client_id``."""
        with self._lock:
            for principal in self._principals.values():
                if principal.kind == "u2m" and principal.client_id == client_id:
                    return principal.name
            return None


def _with_refresh(login: UserLogin, refresh_token: str) -> UserLogin:
    return UserLogin(
        login.name,
        login.client_id,
        login.access_token,
        refresh_token,
        login.expires_at,
        login.id_token,
        login.issued_at,
    )
