"""The workflow-history service over HTTP (the `api` extra): `create_app(store, verifier)` is an
ASGI app; `optiinfra-store serve` runs it."""

from optiinfra_store.api.app import create_app
from optiinfra_store.api.auth import READ_SCOPE, Principal, TokenVerifier, issue_token

__all__ = ["READ_SCOPE", "Principal", "TokenVerifier", "create_app", "issue_token"]
