"""GraphiQL's files, none served when GraphiQL is off: its start script, and the reviewed files of the
graphene-django-graphiql-static wheel. The page itself is app.middleware.GraphiQLPageMiddleware's."""

from __future__ import annotations

import hashlib
from importlib import resources

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.config import Settings
from app.errors import ConfigurationError

# The IDE's files, from the graphene-django-graphiql-static wheel, with their SHA-256: they run on
# this origin, so a changed file is refused rather than served.
_JS = "text/javascript"
GRAPHIQL_ASSETS = {
    "graphiql.min.css": ("text/css", "c6cd4b83f01c5e1ff4975d77bc957184dce6dec0155fbf9cc4d9190eba8a7b9d"),
    "graphiql.min.js": (_JS, "c564de05b95d184e2c5ba5ceaf2635821f6bf92f2d5777b74d91004ff6b591d1"),
    "react.production.min.js": (_JS, "229bbf4d0e7488209564152c6723497f1ac3934136ca1684233d2fa88fa4146f"),
    "react-dom.production.min.js": (_JS, "9db33292007ab6c38527b39d5663e976a305564e19b2a5a8713ea2b2c00f505d"),
}


def graphiql_routes(settings: Settings) -> list[Route]:
    """The IDE page's script and the IDE's reviewed files; 404s when GraphiQL is off."""
    assets = load_graphiql_assets() if settings.graphiql_enabled else {}

    async def graphiql_asset(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in assets:
            return Response(status_code=404)
        headers = {"cache-control": "public, max-age=86400"}
        return Response(assets[name], media_type=GRAPHIQL_ASSETS[name][0], headers=headers)

    async def graphiql_start(_: Request) -> Response:
        if not settings.graphiql_enabled:
            return Response(status_code=404)
        return Response((resources.files("app") / "graphiql.js").read_bytes(), media_type=_JS)

    return [Route("/graphiql/start.js", graphiql_start), Route("/graphiql/static/{name}", graphiql_asset)]


def load_graphiql_assets() -> dict[str, bytes]:
    """Read the IDE's files once, refusing any whose content is not the one reviewed."""
    folder = resources.files("graphene_django_graphiql_static") / "static" / "graphene_django_graphiql_static"
    assets = {}
    for name, (_, digest) in GRAPHIQL_ASSETS.items():
        content = (folder / name).read_bytes()
        if hashlib.sha256(content).hexdigest() != digest:
            raise ConfigurationError(
                f"GraphiQL asset {name} does not match its known SHA-256; reinstall "
                "graphene-django-graphiql-static==0.8 or set GIFTCARDS_GRAPHIQL=false"
            )
        assets[name] = content
    return assets
