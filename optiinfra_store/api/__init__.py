"""The workflow-history service over HTTP (the `api` extra): `create_app(store, verifier,
settings=Settings.from_environ())` is an ASGI app; `optiinfra-store serve` runs it."""

from optiinfra_store.api.app import create_app
from optiinfra_store.api.auth import READ_SCOPE, Principal, TokenVerifier, issue_token
from optiinfra_store.api.settings import Settings

__all__ = ["READ_SCOPE", "Principal", "Settings", "TokenVerifier", "create_app", "issue_token"]
