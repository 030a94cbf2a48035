"""A crowd of browser-like visitors, run as a process of its own.

Each visitor asks its base URL for ``index.html``; once that is in, it asks for the page's
assets and the site's media together over at most ``--parallel`` connections, the media
first (a browser starts the ``<video>`` download alongside the stylesheets and images). The
time to the page (index + every asset) and to everything are recorded per visitor. With
``--page-only`` a visitor stops once its page is complete (plain HTTP from one capped origin
would take minutes to send every visitor the media, and the page is what is measured there).

curl does the transfers (one process for the index, one for the rest), so the crowd costs
the machine little; curl prints a line per finished transfer on stderr, timed here as it
arrives. Bytes are compared with the site folder's once the whole crowd is done.

Prints one JSON object: {"page_s": [...], "all_s": [...], "errors": N, "wall_s": T,
"cpu_s": CPU seconds of the crowd and its curl processes, "delivered": bytes received}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

INDEX = "index.html"
MEDIA_PREFIX = "media/"


def page_files(folder: Path) -> tuple[list[str], list[str]]:
    """The page's assets (everything under assets/) and its media (under media/)."""
    names = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    assets = [n for n in names if n.startswith("assets/")]
    media = [n for n in names if n.startswith(MEDIA_PREFIX)]
    return assets, media


async def crowd(bases: list[str], folder: Path, visitors: int, parallel: int, work: Path,
                max_time: float, page_only: bool) -> dict[str, object]:
    assets, media = page_files(folder)
    wanted = [INDEX, *assets] + ([] if page_only else media)
    expected = {name: (folder / name).read_bytes() for name in wanted}

    async def visit(visitor: int) -> tuple[float | None, float | None, bool]:
        base = bases[visitor % len(bases)]
        out = work / f"visitor{visitor}"
        common = ["curl", "--silent", "--no-progress-meter", "--location", "--fail",
                  "--max-time", str(max_time),
                  "--create-dirs", "--write-out", "%{stderr}%{http_code} %{url_effective}\n"]
        start = time.perf_counter()
        index = await asyncio.create_subprocess_exec(
            *common, "--output", str(out / INDEX), f"{base}/{INDEX}",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        if await index.wait() != 0:
            return None, None, False
        command = [*common, "--parallel", "--parallel-immediate", "--parallel-max",
                   str(parallel)]
        # The media first: a browser starts the video as it meets the tag, beside the rest.
        for name in ([] if page_only else media) + assets:
            command += ["--output", str(out / name), f"{base}/{name}"]
        rest = await asyncio.create_subprocess_exec(
            *command, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        assert rest.stderr is not None
        left = set(assets)
        page_at: float | None = None
        ok = True
        while line := await rest.stderr.readline():
            code, _, url = line.decode(errors="replace").strip().partition(" ")
            if not url.startswith(f"{base}/"):
                continue  # not a transfer's line
            name = url.removeprefix(f"{base}/")
            if code != "200":
                ok = False
            left.discard(name)
            if not left and page_at is None:
                page_at = time.perf_counter() - start
                if page_only:
                    break
        if page_only and rest.returncode is None:
            rest.kill()
        code = await rest.wait()
        done = time.perf_counter() - start
        return page_at, done, ok and (page_only or code == 0)

    began = time.perf_counter()
    loads = await asyncio.gather(*(visit(v) for v in range(visitors)))
    wall = time.perf_counter() - began
    spent = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    page_s: list[float] = []
    all_s: list[float] = []
    errors = 0
    delivered = 0
    for visitor, (page_at, done, ok) in enumerate(loads):
        out = work / f"visitor{visitor}"
        good = ok and page_at is not None and done is not None and all(
            (out / name).is_file() and (out / name).read_bytes() == data
            for name, data in expected.items())
        if good:
            assert page_at is not None and done is not None
            page_s.append(page_at)
            all_s.append(done)
            delivered += sum(len(data) for data in expected.values())
        else:
            errors += 1
        shutil.rmtree(out, ignore_errors=True)
    return {"page_s": page_s, "all_s": all_s, "errors": errors, "wall_s": wall,
            "cpu_s": sum(r.ru_utime + r.ru_stime for r in spent), "delivered": delivered}


async def run(bases: list[str], folder: Path, visitors: int, parallel: int, timeout: float,
              page_only: bool = False) -> dict[str, object]:
    """Run the crowd in a child process (from a process under test); bounded by ``timeout``."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.browsers",
        *(arg for b in bases for arg in ("--base", b)), "--site", str(folder),
        "--visitors", str(visitors), "--max-time", str(max(1.0, timeout - 10)),
        "--parallel", str(parallel), *(["--page-only"] if page_only else []),
        stdout=asyncio.subprocess.PIPE, cwd=Path(__file__).resolve().parent.parent)
    try:
        out, _ = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    if process.returncode != 0:
        raise RuntimeError(f"the browser crowd failed (exit {process.returncode})")
    result: dict[str, object] = json.loads(out)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", required=True, action="append",
                        help="URL the site's files are under (repeatable: visitor i asks the "
                             "i-th, round robin)")
    parser.add_argument("--site", required=True, type=Path, help="the site folder")
    parser.add_argument("--visitors", type=int, default=20)
    parser.add_argument("--parallel", type=int, default=6, help="connections per visitor")
    parser.add_argument("--max-time", type=float, default=300.0,
                        help="seconds a transfer may take before it counts as failed")
    parser.add_argument("--page-only", action="store_true",
                        help="stop each visitor once its page (index + assets) is in")
    args = parser.parse_args()
    # Pages land in memory where the machine has a tmpfs (see visitors.py).
    shm = Path("/dev/shm")
    where = str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None
    with tempfile.TemporaryDirectory(prefix="bench-browsers-", dir=where) as work:
        result = asyncio.run(crowd(args.base, args.site, args.visitors, args.parallel,
                                   Path(work), args.max_time, args.page_only))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
