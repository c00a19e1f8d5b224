"""Bearer-token authentication of the write routes (`Authorization: Bearer mmt_...`).

401 for a missing, malformed, unknown or revoked token, 403 for a token scoped to another
endpoint. No message repeats what the request sent: the header's value is never logged, echoed
or stored (only its SHA-256 is, see `storage.api_tokens`).
"""

from typing import Annotated

from fastapi import Depends, HTTPException, Request, status

from mm_dagster.core.endpoint import ModelEndpoint
from mm_dagster.service.state import ServiceState, service_state
from mm_dagster.storage.api_tokens import ApiToken, ApiTokenStore

CHALLENGE = 'Bearer realm="mm_dagster"'


def _unauthorized(why: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, why, headers={"WWW-Authenticate": CHALLENGE})


def bearer_token(request: Request, state: Annotated[ServiceState, Depends(service_state)]) -> ApiToken:
    """The live token the request carries (a FastAPI dependency; runs in the threadpool)."""
    header = request.headers.get("authorization")
    if not header:
        raise _unauthorized("missing bearer token: send 'Authorization: Bearer <token>'")
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise _unauthorized("malformed Authorization header: expected 'Bearer <token>'")
    token = ApiTokenStore(state.monitoring.engine).authenticate(secret.strip())
    if token is None:
        raise _unauthorized("invalid bearer token: unknown, malformed or revoked")
    return token


def check_scope(token: ApiToken, endpoint: ModelEndpoint) -> None:
    if not token.allows(endpoint.name):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"token {token.name!r} may write to endpoint {token.endpoint!r} only, not {endpoint.name!r}",
        )
