"""The FastAPI app: the routes (serve.translation, serve.embeddings, the
page) over a ``Registry`` of loaded models, behind the body limit, the
security headers and, when asked for, CORS for one origin."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from seqembed import __version__
from seqembed.serve import embeddings, translation
from seqembed.serve.http import BodyLimit, SecurityHeaders, install_error_handlers
from seqembed.serve.page import add_page_routes
from seqembed.serve.registry import Registry


def create_app(registry: Registry, cors: str | None = None) -> FastAPI:
    from fastapi_offline import FastAPIOffline

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        # After the requests in flight: finish the queued jobs, end workers.
        await asyncio.get_running_loop().run_in_executor(None, registry.stop)

    app = FastAPIOffline(  # /docs with Swagger UI from the package, no CDN
        title="seqembed",
        version=__version__,
        description="Translate with seqembed models and explore their "
        "embeddings, every figure beside its chance level.",
        lifespan=lifespan,
        redoc_url=None,
    )
    app.state.registry = registry
    install_error_handlers(app)
    app.include_router(translation.router)
    app.include_router(embeddings.router)
    add_page_routes(app)
    app.add_middleware(BodyLimit, max_body=registry.settings.max_body)
    if cors:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=[cors],
            allow_methods=["GET", "POST"],
            allow_headers=["content-type"],
        )
    app.add_middleware(SecurityHeaders)
    return app
