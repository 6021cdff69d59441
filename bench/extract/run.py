"""Lead-paragraph benchmark: digest's extractor against the usual Python peers.

Usage (from the repository root, with the peers installed: ``pip install -e .[bench]``)::

    python bench/extract/run.py [--data ../shared/bench/extract/aeb] [--only digest]
                                [--misses]

Reads the gzipped pages of the Scrapinghub article-extraction benchmark, runs each
extractor on every page in the same process, and prints a Markdown table: lead match
rate (the rule in ``bench/extract/README.md``), median time per page, and time
relative to trafilatura. A peer that is not installed is skipped with a note.
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import re
import statistics
import sys
import time
import unicodedata
import warnings
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# The shared folder sits beside the repository root; from a git worktree, look further up.
DEFAULT_DATA = next(
    (
        d / "shared" / "bench" / "extract" / "aeb"
        for d in REPO.parents
        if (d / "shared" / "bench" / "extract" / "aeb").is_dir()
    ),
    REPO.parent / "shared" / "bench" / "extract" / "aeb",
)
sys.path.insert(0, str(REPO))

from digest.extract import decode_html, extract_html  # noqa: E402

Extractor = Callable[[str, str], list[str]]

_MAP = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201a": "'",
        "\u201b": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u00ab": '"',
        "\u00bb": '"',
        "\u2010": "-",
        "\u2011": "-",
        "\u2012": "-",
        "\u2013": "-",
        "\u2014": "-",
        "\u2015": "-",
        "\u2212": "-",
        "\u00a0": " ",
        "\u202f": " ",
        "\u2007": " ",
    }
)
_TOKEN = re.compile(r"\w+")


def first_long(paragraphs: list[str], words: int = 20) -> str:
    """The first paragraph with at least ``words`` whitespace-separated words."""
    return next((p for p in paragraphs if len(p.split()) >= words), "")


def _norm(text: str) -> str:
    return "".join(unicodedata.normalize("NFKC", text).translate(_MAP).split())


def _f1(a: str, b: str) -> float:
    ta, tb = _TOKEN.findall(a.lower()), _TOKEN.findall(b.lower())
    if not ta or not tb:
        return 0.0
    counts: dict[str, int] = {}
    for t in tb:
        counts[t] = counts.get(t, 0) + 1
    common = 0
    for t in ta:
        if counts.get(t, 0) > 0:
            counts[t] -= 1
            common += 1
    if not common:
        return 0.0
    precision, recall = common / len(ta), common / len(tb)
    return 2 * precision * recall / (precision + recall)


def lead_matches(got: str, expected: str) -> bool:
    """The README's rule: equal after normalisation, or token F1 of at least 0.9."""
    if not got:
        return False
    return _norm(got) == _norm(expected) or _f1(got, expected) >= 0.9


def _digest(html: str, url: str) -> list[str]:
    return list(extract_html(html, url).paragraphs)


def _split(text: str | None) -> list[str]:
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def load_peers() -> tuple[dict[str, Extractor], list[str]]:
    """The peers that are installed, and a note for each that is not."""
    peers: dict[str, Extractor] = {}
    notes: list[str] = []
    try:
        import trafilatura

        def _trafilatura(html: str, url: str) -> list[str]:
            return _split(trafilatura.extract(html, url=url, include_comments=False))

        peers["trafilatura"] = _trafilatura
    except ImportError:
        notes.append("trafilatura is not installed: skipped")
    try:
        import lxml.html
        from readability import Document

        def _readability(html: str, url: str) -> list[str]:
            summary = Document(html, url=url).summary(html_partial=True)
            tree = lxml.html.fromstring(summary)
            blocks = tree.xpath("//p|//li|//pre|//blockquote[not(.//p)]")
            texts = [" ".join(b.text_content().split()) for b in blocks]
            return [t for t in texts if t] or _split(tree.text_content())

        peers["readability-lxml"] = _readability
    except ImportError:
        notes.append("readability-lxml is not installed: skipped")
    try:
        from newspaper import Article as NewspaperArticle

        def _newspaper(html: str, url: str) -> list[str]:
            article = NewspaperArticle(url, fetch_images=False)
            article.download(input_html=html)  # no network: the HTML is handed in
            article.parse()  # parse only; nlp() would need nltk data
            return _split(article.text)

        peers["newspaper4k"] = _newspaper
    except ImportError:
        notes.append("newspaper4k is not installed: skipped")
    try:
        from goose3 import Goose

        goose = Goose({"enable_image_fetching": False})

        def _goose(html: str, url: str) -> list[str]:
            return _split(goose.extract(url=url, raw_html=html).cleaned_text)

        peers["goose3"] = _goose
    except ImportError:
        notes.append("goose3 is not installed: skipped")
    return peers, notes


def run(data: Path, only: list[str] | None, misses: bool) -> str:
    truth = json.loads((data / "ground-truth.json").read_text(encoding="utf-8"))
    pages = []
    for page_id, entry in sorted(truth.items()):
        expected = first_long(entry["articleBody"].split("\n"))
        if not expected:
            continue
        raw = gzip.decompress((data / "html" / f"{page_id}.html.gz").read_bytes())
        pages.append((page_id, entry["url"], decode_html(raw), expected))

    extractors: dict[str, Extractor] = {"digest": _digest}
    peers, notes = load_peers()
    extractors.update(peers)
    if only:
        extractors = {k: v for k, v in extractors.items() if k in only}
    # Page by page, every extractor in turn: a load spike on the machine then costs
    # all of them alike instead of skewing one extractor's timings.
    hits = dict.fromkeys(extractors, 0)
    times: dict[str, list[float]] = {name: [] for name in extractors}
    errors: dict[str, list[str]] = {name: [] for name in extractors}
    for page_id, url, html, expected in pages:
        for name, func in extractors.items():
            start = time.perf_counter()
            try:
                paragraphs = func(html, url)
            except Exception as exc:  # a crash on a page counts as a miss
                paragraphs = []
                errors[name].append(f"{page_id[:12]}: {type(exc).__name__}")
            times[name].append((time.perf_counter() - start) * 1000)
            got = first_long(paragraphs)
            if lead_matches(got, expected):
                hits[name] += 1
            elif misses and name == "digest":
                print(f"MISS {page_id[:12]} {url}\n  want: {expected[:160]}\n  got:  {got[:160]}")
    results = {
        name: (100 * hits[name] / len(pages), statistics.median(times[name]), len(errors[name]))
        for name in extractors
    }
    notes += [f"{name} raised on {', '.join(errs)}" for name, errs in errors.items() if errs]
    base = results.get("trafilatura", (0.0, 0.0, 0))[1]
    lines = [
        f"Pages with a ground-truth lead: {len(pages)}",
        "",
        "| extractor | lead match | headline | median ms/page | time vs trafilatura |",
        "|---|---|---|---|---|",
    ]
    for name, (rate, median, failures) in results.items():
        ratio = f"{median / base:.2f}x" if base else "n/a"
        crashed = f" ({failures} errors)" if failures else ""
        lines.append(
            f"| {name} | {rate:.1f}%{crashed} | n/a (no ground truth) | {median:.1f} | {ratio} |"
        )
    return "\n".join([*notes, *lines])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the aeb folder")
    parser.add_argument("--only", action="append", help="run only this extractor (repeatable)")
    parser.add_argument("--misses", action="store_true", help="print digest's missed leads")
    args = parser.parse_args()
    if not (args.data / "ground-truth.json").exists():
        parser.error(f"no ground-truth.json in {args.data}; pass --data")
    warnings.simplefilter("ignore")
    logging.disable(logging.WARNING)  # peers log every date they cannot parse
    print(run(args.data, args.only, args.misses))


if __name__ == "__main__":
    main()
