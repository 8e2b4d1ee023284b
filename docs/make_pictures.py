"""Make the README's pictures from a real run, in one command:

    python docs/make_pictures.py                 # trains `seqembed demo` first
    python docs/make_pictures.py --run runs/demo # or pictures of a run you have

writes, under docs/ (``--out`` to choose another folder):

    demo-tsne.png    `seqembed plot RUN --groups builtin` (t-SNE)
    demo-pca.png     the same with --method pca
    report-top.png   the top of `seqembed report RUN`: checkpoint, contents,
                     summary, training curve
    report-map.png   the report's embedding map, with the neighbours of 天气
                     and how stable they are in the side panel

The report is drawn by Debian's chromium, headless, through Playwright (no
browser download): ``--chromium PATH`` or $SEQEMBED_CHROMIUM to use another.
Every step is the seqembed CLI in a subprocess, as a user would run it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DOCS = Path(__file__).resolve().parent
CHROMIUM = Path(os.environ.get("SEQEMBED_CHROMIUM", "/usr/bin/chromium"))
VIEWPORT = {"width": 1300, "height": 900}
WORD = "天气"  # the word whose neighbours the map picture shows


def seqembed(*args, cwd: Path) -> None:
    command = [sys.executable, "-m", "seqembed", *map(str, args)]
    print("$ seqembed " + " ".join(map(str, args)), flush=True)
    subprocess.run(command, check=True, cwd=cwd)


def screenshots(report: Path, out: Path, chromium: Path) -> list[Path]:
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp(prefix="seqembed-pictures-")
    written = [out / "report-top.png", out / "report-map.png"]
    try:
        with sync_playwright() as playwright:
            context = playwright.chromium.launch_persistent_context(
                profile,
                executable_path=str(chromium),
                args=["--headless", "--no-sandbox", "--disable-gpu"],
                viewport=VIEWPORT,
                device_scale_factor=1,
            )
            page = context.new_page()
            page.goto(report.resolve().as_uri())
            page.wait_for_function("document.fonts.status === 'loaded'")
            page.wait_for_selector("#map .scatterlayer .point")
            page.wait_for_timeout(500)  # the labels are placed after the plot
            end = page.locator("#training").bounding_box()
            page.screenshot(
                path=written[0],
                clip={"x": 0, "y": 0, "width": VIEWPORT["width"],
                      "height": end["y"] + end["height"]},
                full_page=True,
            )  # fmt: skip
            page.fill("#search", WORD)
            page.press("#search", "Enter")
            page.wait_for_function("document.getElementById('word-info').dataset.word")
            page.locator("#map").scroll_into_view_if_needed()
            page.wait_for_timeout(500)
            page.locator("#embedding-map").screenshot(path=written[1])
            context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", help="a trained run (default: train the demo)")
    parser.add_argument("--out", default=str(DOCS), help="folder (default docs/)")
    parser.add_argument("--chromium", default=str(CHROMIUM))
    args = parser.parse_args(argv)
    started = time.perf_counter()
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="seqembed-pictures-") as work:
        # Inside the work folder the demo is runs/demo, as in the README.
        work = Path(work)
        run = Path(args.run).resolve() if args.run else Path("runs/demo")
        if not args.run:
            seqembed("demo", "--out", run, cwd=work)
        for method in ("tsne", "pca"):
            name = "demo-tsne.png" if method == "tsne" else "demo-pca.png"
            seqembed("plot", run, "--groups", "builtin", "--method", method,
                     "--out", out / name, cwd=work)  # fmt: skip
        report = work / "report.html"
        seqembed("report", run, "--out", report, cwd=work)
        shots = screenshots(report, out, Path(args.chromium))
    for path in [out / "demo-tsne.png", out / "demo-pca.png", *shots]:
        print(path)
    print(f"done in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
