"""Extraction benchmark: digest's extractor against the usual Python peers, on two public sets.

Usage (from the repository root, with the peers installed: ``pip install -e .[bench]``)::

    python bench/extract/run.py [--set aeb] [--set wcxb] [--only digest] [--refresh]
                                [--misses lead|headline] [--show-losses lead|headline]

For each set (``aeb``: 181 pages of the Scrapinghub article-extraction benchmark;
``wcxb``: 710 article pages of the WCXB development split, with headlines), runs each
extractor on every page and prints a Markdown table: lead match rate, headline match
rate (where the set has headlines), median time per page and time relative to
trafilatura; then the paired comparison of digest against the best peer (pages only
digest gets right, pages only the peer gets right). The rules are in
``bench/extract/README.md``. A peer that is not installed is skipped with a note.

Peers are slow; each peer's per-page results (lead, headline, time, error) are kept in
``bench/results/<set>-<peer>-<version>.json`` (not versioned) and reused until
``--refresh``. digest always runs afresh. Times are CPU time per page (thread time),
so a peer measured in another run, or on a busier machine, still compares fairly.
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
from dataclasses import asdict, dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "bench" / "results"
# Each set's folder inside the shared folder, which sits beside the repository root
# (from a git worktree, further up).
SETS = {"aeb": Path("bench/extract/aeb"), "wcxb": Path("bench/extract-wcxb")}
sys.path.insert(0, str(REPO))

from digest.extract import decode_html, extract_html  # noqa: E402

#: An extractor: (html, url) -> (body paragraphs, headline).
Extractor = Callable[[str, str], tuple[list[str], str]]

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


def matches(got: str, expected: str) -> bool:
    """The README's rule: equal after normalisation, or token F1 of at least 0.9."""
    if not got:
        return False
    return _norm(got) == _norm(expected) or _f1(got, expected) >= 0.9


@dataclass(frozen=True, slots=True)
class BenchPage:
    id: str
    url: str
    html: str
    lead: str  # the expected lead ("" when the truth has no paragraph long enough)
    headline: str  # the expected headline ("" when the set has none)


@dataclass(frozen=True, slots=True)
class Result:
    lead: str
    headline: str
    ms: float  # CPU time of the extraction (thread time: waiting for a core is not counted)
    error: str = ""


def find_set(name: str) -> Path:
    for parent in REPO.parents:
        candidate = parent / "shared" / SETS[name]
        if candidate.is_dir():
            return candidate
    return REPO.parent / "shared" / SETS[name]


def load_set(data: Path) -> list[BenchPage]:
    truth = json.loads((data / "ground-truth.json").read_text(encoding="utf-8"))
    pages = []
    for page_id, entry in sorted(truth.items()):
        raw = gzip.decompress((data / "html" / f"{page_id}.html.gz").read_bytes())
        pages.append(
            BenchPage(
                page_id,
                entry["url"],
                decode_html(raw),
                first_long(entry["articleBody"].split("\n")),
                entry.get("headline") or "",
            )
        )
    return pages


def _digest(html: str, url: str) -> tuple[list[str], str]:
    article = extract_html(html, url)
    return list(article.paragraphs), article.headline


def _split(text: str | None) -> list[str]:
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


# Peers whose title comes from a second, untimed call.
_TITLES: dict[str, Callable[[str, str], str]] = {}


def load_peers() -> tuple[dict[str, tuple[Extractor, str]], list[str]]:
    """The peers that are installed with their versions, and a note for each that is not.

    Only the body extraction is timed where a peer reads the title in a separate call.
    """
    peers: dict[str, tuple[Extractor, str]] = {}
    notes: list[str] = []

    def installed(dist: str) -> str | None:
        try:
            return version(dist)
        except PackageNotFoundError:
            notes.append(f"{dist} is not installed: skipped")
            return None

    if v := installed("trafilatura"):
        import trafilatura

        def _trafilatura(html: str, url: str) -> tuple[list[str], str]:
            text = trafilatura.extract(html, url=url, include_comments=False)
            return _split(text), ""

        def _trafilatura_title(html: str, url: str) -> str:
            meta = trafilatura.extract_metadata(html, default_url=url)
            return (meta.title or "") if meta is not None else ""

        peers["trafilatura"] = (_trafilatura, v)
        _TITLES["trafilatura"] = _trafilatura_title
    if v := installed("readability-lxml"):
        import lxml.html
        from readability import Document

        def _readability(html: str, url: str) -> tuple[list[str], str]:
            doc = Document(html, url=url)
            summary = doc.summary(html_partial=True)
            tree = lxml.html.fromstring(summary)
            blocks = tree.xpath("//p|//li|//pre|//blockquote[not(.//p)]")
            texts = [" ".join(b.text_content().split()) for b in blocks]
            return [t for t in texts if t] or _split(tree.text_content()), doc.short_title()

        peers["readability-lxml"] = (_readability, v)
    if v := installed("newspaper4k"):
        from newspaper import Article as NewspaperArticle

        def _newspaper(html: str, url: str) -> tuple[list[str], str]:
            article = NewspaperArticle(url, fetch_images=False)
            article.download(input_html=html)  # no network: the HTML is handed in
            article.parse()  # parse only; nlp() would need nltk data
            return _split(article.text), article.title or ""

        peers["newspaper4k"] = (_newspaper, v)
    if v := installed("goose3"):
        from goose3 import Goose

        goose = Goose({"enable_image_fetching": False})

        def _goose(html: str, url: str) -> tuple[list[str], str]:
            article = goose.extract(url=url, raw_html=html)
            return _split(article.cleaned_text), article.title or ""

        peers["goose3"] = (_goose, v)
    return peers, notes


def run_one(name: str, func: Extractor, page: BenchPage) -> Result:
    start = time.thread_time()
    try:
        paragraphs, headline = func(page.html, page.url)
        error = ""
    except Exception as exc:  # a crash on a page counts as a miss
        paragraphs, headline, error = [], "", type(exc).__name__
    ms = (time.thread_time() - start) * 1000
    if name in _TITLES and not error:
        try:
            headline = _TITLES[name](page.html, page.url)
        except Exception:
            headline = ""
    return Result(first_long(paragraphs), headline, ms, error)


def peer_results(
    set_name: str, name: str, func: Extractor, release: str, pages: list[BenchPage], refresh: bool
) -> dict[str, Result]:
    """A peer's results on every page, from the cache unless it is missing or ``refresh``."""
    cache = RESULTS / f"{set_name}-{name}-{release}-cpu.json"
    if cache.exists() and not refresh:
        kept = json.loads(cache.read_text(encoding="utf-8"))
        if set(kept) >= {p.id for p in pages}:
            return {k: Result(**v) for k, v in kept.items()}
    results = {}
    for page in pages:
        results[page.id] = run_one(name, func, page)
    RESULTS.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps({k: asdict(v) for k, v in results.items()}), encoding="utf-8")
    return results


def _rate(hits: set[str], total: int) -> str:
    return f"{100 * len(hits) / total:.1f}%" if total else "n/a"


def report(
    set_name: str, pages: list[BenchPage], results: dict[str, dict[str, Result]], notes: list[str]
) -> str:
    with_lead = [p for p in pages if p.lead]
    with_headline = [p for p in pages if p.headline]
    leads = {
        name: {p.id for p in with_lead if matches(res[p.id].lead, p.lead)}
        for name, res in results.items()
    }
    headlines = {
        name: {p.id for p in with_headline if matches(res[p.id].headline, p.headline)}
        for name, res in results.items()
    }
    medians = {name: statistics.median(r.ms for r in res.values()) for name, res in results.items()}
    base = medians.get("trafilatura", 0.0)
    lines = [
        f"## {set_name}: {len(pages)} pages, {len(with_lead)} with a ground-truth lead, "
        f"{len(with_headline)} with a headline",
        "",
        "| extractor | lead match | headline match | median CPU ms/page | time vs trafilatura |",
        "|---|---|---|---|---|",
    ]
    for name, res in results.items():
        errors = sum(1 for r in res.values() if r.error)
        crashed = f" ({errors} errors)" if errors else ""
        ratio = f"{medians[name] / base:.2f}x" if base else "n/a"
        lines.append(
            f"| {name} | {_rate(leads[name], len(with_lead))}{crashed} | "
            f"{_rate(headlines[name], len(with_headline))} | {medians[name]:.1f} | {ratio} |"
        )
    peers = [n for n in results if n != "digest"]
    if "digest" in results and peers:
        lines.append("")
        for field, hits, total in (
            ("lead", leads, len(with_lead)),
            ("headline", headlines, len(with_headline)),
        ):
            if not total:
                continue
            best = max(peers, key=lambda n: len(hits[n]))
            won = len(hits["digest"] - hits[best])
            lost = len(hits[best] - hits["digest"])
            lines.append(
                f"Paired {field} against the best peer ({best}): digest wins {won} pages, "
                f"loses {lost}."
            )
    for name, res in results.items():
        errs = [f"{k[:12]}: {r.error}" for k, r in res.items() if r.error]
        if errs:
            notes.append(f"{set_name}: {name} raised on {', '.join(errs[:10])}")
    return "\n".join(lines)


def show_losses(
    set_name: str, pages: list[BenchPage], results: dict[str, dict[str, Result]], field: str
) -> None:
    """Print each page of ``field`` that the best peer matches and digest misses."""
    peers = [n for n in results if n != "digest"]
    if not peers:
        return

    def hits(name: str) -> set[str]:
        return {
            p.id
            for p in pages
            if getattr(p, field) and matches(getattr(results[name][p.id], field), getattr(p, field))
        }

    best = max(peers, key=lambda n: len(hits(n)))
    lost = hits(best) - hits("digest")
    for page in pages:
        if page.id in lost:
            print(f"LOSS {set_name} {page.id[:12]} {page.url}")
            print(f"  want:   {getattr(page, field)[:200]}")
            print(f"  digest: {getattr(results['digest'][page.id], field)[:200]}")
            print(f"  {best}: {getattr(results[best][page.id], field)[:200]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", action="append", choices=sorted(SETS), help="default: all")
    parser.add_argument("--only", action="append", help="run only this extractor (repeatable)")
    parser.add_argument("--refresh", action="store_true", help="run the peers again")
    parser.add_argument(
        "--misses", choices=("lead", "headline"), help="print digest's misses of this field"
    )
    parser.add_argument(
        "--show-losses",
        choices=("lead", "headline"),
        help="print the pages of this field that the best peer gets right and digest misses",
    )
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    logging.disable(logging.WARNING)  # peers log every date they cannot parse
    peers, notes = load_peers()
    out = []
    for set_name in args.set or sorted(SETS):
        data = find_set(set_name)
        if not (data / "ground-truth.json").exists():
            notes.append(f"{set_name}: no ground-truth.json in {data}: skipped")
            continue
        pages = load_set(data)
        results: dict[str, dict[str, Result]] = {}
        if not args.only or "digest" in args.only:
            results["digest"] = {p.id: run_one("digest", _digest, p) for p in pages}
        for name, (func, release) in peers.items():
            if not args.only or name in args.only:
                results[name] = peer_results(set_name, name, func, release, pages, args.refresh)
        out.append(report(set_name, pages, results, notes))
        if args.misses and "digest" in results:
            for page in pages:
                want = page.lead if args.misses == "lead" else page.headline
                got = getattr(results["digest"][page.id], args.misses)
                if want and not matches(got, want):
                    print(f"MISS {set_name} {page.id[:12]} {page.url}")
                    print(f"  want: {want[:200]}\n  got:  {got[:200]}")
        if args.show_losses and "digest" in results:
            show_losses(set_name, pages, results, args.show_losses)
    print("\n\n".join([*notes, *out]))


if __name__ == "__main__":
    main()
