"""The explorer page and its assets, each at a fixed address.

Nothing here takes a path from a request: every file the server can send is
named below and found once, in this package (serve/static/), in plotly's
package (plotly.min.js) or as the bundled Noto Sans SC (report.fonts), so
the page works offline and with no Chinese font on the viewer's machine.
"""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, HTMLResponse, Response

CACHE = "public, max-age=3600"


@functools.lru_cache(maxsize=8)
def _static(name: str) -> bytes:
    return resources.files("seqembed.serve").joinpath("static", name).read_bytes()


@functools.lru_cache(maxsize=1)
def _plotly_path() -> Path:
    import plotly

    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


def add_page_routes(app: FastAPI) -> None:
    @app.get("/", include_in_schema=False)
    async def page() -> HTMLResponse:
        return HTMLResponse(_static("index.html"))

    @app.get("/static/explorer.js", include_in_schema=False)
    async def script() -> Response:
        return Response(_static("explorer.js"), media_type="text/javascript")

    @app.get("/static/explorer.css", include_in_schema=False)
    async def style() -> Response:
        return Response(_static("explorer.css"), media_type="text/css")

    @app.get("/static/plotly.min.js", include_in_schema=False)
    async def plotly_js() -> FileResponse:
        return FileResponse(
            _plotly_path(),
            media_type="text/javascript",
            headers={"cache-control": CACHE},
        )

    @app.get("/static/cjk-font.otf", include_in_schema=False)
    async def font() -> FileResponse:
        from seqembed.report.fonts import bundled_font_path

        return FileResponse(
            bundled_font_path(), media_type="font/otf", headers={"cache-control": CACHE}
        )
