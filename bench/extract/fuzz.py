"""Fuzzing extraction: no input makes ``extract_html`` raise anything but ``ExtractError``,
and no page takes long.

Usage (from the repository root, with the test extra installed: ``pip install -e .[test]``)::

    python bench/extract/fuzz.py [--mutated 40000] [--generated 70000] [--seed 1]

Two kinds of input, both drawn by Hypothesis:

- **mutated pages**: a page of the public benchmark sets (``../shared/bench/extract``)
  cut, spliced, repeated, nested deep, or sprinkled with hostile markup (class and
  attribute values with newlines, quotes and brackets, broken entities, stray bytes),
  handed in as text or as bytes with a random ``Content-Type``;
- **generated pages**: HTML trees built from tags, attributes, text, ``<meta>`` and
  JSON-LD with values chosen to reach selectors, parsers and date and URL handling.

Every case goes through ``extract_html``; an exception other than ``ExtractError`` is
counted by type and its input written to ``bench/results/fuzz/`` (ignored by git). The
report gives the cases run, the failures, and the median and maximum CPU time per page
(thread time: on a shared machine, waiting for a core is not the page's fault; a page over
250 ms is timed twice and the lesser counts, so a garbage collection is not its fault either).
Exits 1 when anything but ``ExtractError`` was raised or a page took over 1 s.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import SETS, find_set  # noqa: E402

from digest.errors import ExtractError  # noqa: E402
from digest.extract import decode_html, extract_html  # noqa: E402

FAILURES = REPO / "bench" / "results" / "fuzz"
SLOW_MS = 1000.0

# Values meant to break whatever turns page content into selectors, URLs or dates.
NASTY = [
    "a\nb",
    'x"y',
    "x'y",
    "a]b[c",
    "\\",
    "\x00",
    "\r\n",
    "a{b}c",
    "#",
    ".",
    ":not(",
    "*",
    "&amp;#x26;",
    "&#0;",
    "&#xD800;",
    "&bogus;",
    "\u2028",
    "\ufeff",
    "𝔘𝔫𝔦",
    "javascript:alert(1)",
    "//evil.example/a",
    "http://[::1",
    "file:///etc/passwd",
    "9999-99-99T99:99",
    "2024-02-30",
    "Mon, 32 Foo 2024 25:61:61 +9999",
    "-1",
    "1e309",
    "{",
    "[[[[",
    "<",
    "</p>",
    "<!--",
    "]]>",
]
TAGS = [
    "p", "div", "span", "a", "h1", "h2", "h3", "article", "main", "section", "aside", "header",
    "footer", "nav", "li", "ul", "ol", "table", "tr", "td", "br", "img", "figure", "figcaption",
    "time", "strong", "em", "font", "blockquote", "pre", "code", "form", "label", "select",
    "option", "template", "noscript", "script", "style", "svg", "iframe", "dd", "dl", "title",
]  # fmt: skip
ATTRS = ["class", "id", "href", "src", "data-src", "srcset", "rel", "itemprop", "datetime",
         "hidden", "aria-hidden", "lang", "content", "property", "name", "style", "alt"]  # fmt: skip
META_NAMES = [
    "og:title", "og:description", "og:image", "og:image:alt", "og:site_name", "og:url",
    "description", "twitter:title", "author", "article:published_time", "article:section",
    "og:locale", "date", "parsely-pub-date",
]  # fmt: skip
CONTENT_TYPES = ["", "text/html", "text/html; charset=utf-8", "text/html; charset=iso-8859-1",
                 "text/html; charset=shift_jis", "text/html; charset=utf-16", "image/png",
                 "application/octet-stream", "text/html; charset=bogus"]  # fmt: skip

# Sentences long enough to be scored as body text, so generated pages reach the body scan.
PROSE = [
    "The council met on Tuesday, after a long delay, and agreed to rebuild the bridge, the "
    "ferry ramp and the road between them before the winter storms arrive again.",
    "Residents said the plan, first put forward in 2019, had been promised, delayed, costed, "
    "cut and promised again so often that few of them believed it this time.",
    "By Ana Ruiz, 3 May 2025",
    "We may earn a commission when you buy through links on our site.",
    "Photo: Reuters",
]
values = st.one_of(st.sampled_from(NASTY), st.text(max_size=30))
words = st.text(alphabet=st.characters(codec="utf-8"), max_size=80)


@st.composite
def elements(draw: st.DrawFn, depth: int = 0) -> str:
    tag = draw(st.sampled_from(TAGS))
    attrs = draw(st.lists(st.tuples(st.sampled_from(ATTRS), values), max_size=3))
    attr_text = "".join(f' {k}="{v}"' if "\x00" not in v else f" {k}={v}" for k, v in attrs)
    children = []
    if depth < 4:
        children = draw(
            st.lists(
                st.one_of(words, elements(depth + 1), st.sampled_from(NASTY + PROSE)),
                max_size=3,
            )
        )
    closed = draw(st.booleans())
    return f"<{tag}{attr_text}>{''.join(children)}" + (f"</{tag}>" if closed else "")


# Drawing a page costs Hypothesis far more than extracting it: each example draws the
# parts, and a seeded random (drawn too, so runs repeat) assembles a batch of pages.
GENERATED_BATCH = 25
MUTATED_BATCH = 5
LD_KEYS = ["@type", "headline", "image", "author", "datePublished", "@graph", "mainEntity",
           "description", "name", "itemListElement", "articleSection", "url"]  # fmt: skip
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), values),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(LD_KEYS), inner, max_size=4)
    ),
    max_leaves=12,
)
head_parts = st.one_of(
    st.builds(
        lambda k, v: f'<meta property="{k}" content="{v}">', st.sampled_from(META_NAMES), values
    ),
    st.builds(
        lambda ld: f'<script type="application/ld+json">{json.dumps(ld)}</script>', json_values
    ),
    st.builds(lambda a, b: f"<title>{a} | {b}</title>", values, values),
)


@st.composite
def generated_batch(draw: st.DrawFn) -> list[str]:
    fragments = draw(st.lists(elements(), min_size=1, max_size=8))
    heads = draw(st.lists(head_parts, max_size=5))
    rnd = draw(st.randoms(use_true_random=False))
    batch = []
    for _ in range(GENERATED_BATCH):
        body = "".join(rnd.choices(fragments, k=rnd.randint(1, 10)))
        if rnd.random() < 0.7:
            body += "".join(f"<p>{rnd.choice(PROSE)}</p>" for _ in range(rnd.randint(1, 4)))
        if rnd.random() < 0.2:  # deep, oddly classed wrappers
            wrapper = f'<div class="{rnd.choice(NASTY)}">'
            body = wrapper * rnd.randint(1, 600) + body
        head = "".join(rnd.sample(heads, k=rnd.randint(0, len(heads))))
        batch.append(f"<html><head>{head}</head><body>{body}</body></html>")
    return batch


OPS = ["cut", "splice", "repeat", "nest", "inject", "attr"]


def mutation_batches(
    pages: list[tuple[str, str]],
) -> st.SearchStrategy[list[tuple[str | bytes, str, str]]]:
    @st.composite
    def batch(draw: st.DrawFn) -> list[tuple[str | bytes, str, str]]:
        ops = draw(
            st.lists(
                st.tuples(st.sampled_from(OPS), st.floats(0, 1), st.integers(1, 3000)),
                min_size=1,
                max_size=4,
            )
        )
        fragment, value = draw(elements()), draw(values)
        encoding = draw(st.sampled_from([None, "utf-8", "cp1252", "utf-16", "latin-1"]))
        content_type = draw(st.sampled_from(CONTENT_TYPES))
        rnd = draw(st.randoms(use_true_random=False))
        out: list[tuple[str | bytes, str, str]] = []
        for _ in range(MUTATED_BATCH):
            html, url = rnd.choice(pages)
            for op, where, size in ops:
                at = int(where * len(html))
                if op == "cut":
                    html = html[:at]
                elif op == "splice":
                    html = html[:at] + html[at + size * 2 :]
                elif op == "repeat":
                    html = html[: at + size] + html[at : at + size] * (size % 20 + 1) + html[at:]
                elif op == "nest":
                    tag = rnd.choice(["div", "span", "p", "aside", "font", "li", "table"])
                    html = html[:at] + f"<{tag}>" * size + html[at:]
                elif op == "inject":
                    html = html[:at] + fragment + html[at:]
                else:  # a hostile value inside the next attribute
                    quote = html.find('"', at)
                    if quote >= 0:
                        html = html[: quote + 1] + value + html[quote + 1 :]
            if encoding is None:
                out.append((html, url, ""))
            else:
                out.append((html.encode(encoding, errors="replace"), url, content_type))
        return out

    return batch()


URLS = ["https://example.org/a", "file:///tmp/x.html", "", "not a url", "http://[::1"]


class Tally:
    """Exceptions by type, timings, and the slowest input."""

    def __init__(self) -> None:
        self.cases = 0
        self.extract_errors = 0
        self.failures: Counter[str] = Counter()
        self.times: list[float] = []
        self.slowest: tuple[float, str] = (0.0, "")

    def run(self, html: str | bytes, url: str, content_type: str, kind: str) -> None:
        self.cases += 1
        ms = self._timed(html, url, content_type, record=True)
        if ms > SLOW_MS / 4:
            # Timed again, the lesser counting: a collection of the garbage Hypothesis
            # left (thread time too) once made a 10,000-character page read 1.4 s that
            # takes 1 ms; a page that is slow by itself is slow both times.
            ms = min(ms, self._timed(html, url, content_type, record=False))
        self.times.append(ms)
        if ms > self.slowest[0]:
            digest = hashlib.sha1(html if isinstance(html, bytes) else html.encode()).hexdigest()
            self.slowest = (ms, f"{kind} page of {len(html)} chars ({digest[:10]})")
            if ms > SLOW_MS:
                self.save(html, f"slow {ms:.0f} ms")

    def _timed(self, html: str | bytes, url: str, content_type: str, *, record: bool) -> float:
        """CPU milliseconds of one extraction; with ``record``, its outcome is counted."""
        start = time.thread_time()
        try:
            extract_html(html, url, content_type=content_type)
        except ExtractError:
            self.extract_errors += record
        except Exception as exc:  # what the fuzzing is for: record, keep going
            if record:
                name = f"{type(exc).__name__}: {str(exc)[:80]}"
                if not self.failures[name]:
                    self.save(html, name)
                self.failures[name] += 1
        return (time.thread_time() - start) * 1000

    def save(self, html: str | bytes, why: str) -> None:
        FAILURES.mkdir(parents=True, exist_ok=True)
        data = html if isinstance(html, bytes) else html.encode("utf-8", "surrogatepass")
        name = hashlib.sha1(data).hexdigest()[:12]
        (FAILURES / f"{name}.html").write_bytes(data)
        (FAILURES / f"{name}.txt").write_text(why + "\n", encoding="utf-8")


def load_pages() -> list[tuple[str, str]]:
    pages = []
    for name in SETS:
        data = find_set(name)
        if not (data / "ground-truth.json").exists():
            continue
        truth = json.loads((data / "ground-truth.json").read_text(encoding="utf-8"))
        for page_id, entry in truth.items():
            raw = gzip.decompress((data / "html" / f"{page_id}.html.gz").read_bytes())
            pages.append((decode_html(raw), entry["url"]))
    return pages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mutated", type=int, default=40_000, help="mutated public pages")
    parser.add_argument("--generated", type=int, default=70_000, help="generated pages")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    tally = Tally()
    options = settings(
        max_examples=1,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    pages = load_pages()
    started = time.perf_counter()
    if pages and args.mutated:

        @seed(args.seed)
        @settings(options, max_examples=-(-args.mutated // MUTATED_BATCH))
        @given(mutation_batches(pages))
        def fuzz_mutated(batch: list[tuple[str | bytes, str, str]]) -> None:
            for html, url, content_type in batch:
                tally.run(html, url, content_type, "mutated")

        fuzz_mutated()
    if args.generated:

        @seed(args.seed)
        @settings(options, max_examples=-(-args.generated // GENERATED_BATCH))
        @given(generated_batch(), st.sampled_from(URLS))
        def fuzz_generated(batch: list[str], url: str) -> None:
            for html in batch:
                tally.run(html, url, "", "generated")

        fuzz_generated()
    elapsed = time.perf_counter() - started
    print(f"Cases: {tally.cases} ({len(pages)} public pages to mutate), {elapsed:.0f} s")
    print(f"ExtractError (expected for non-pages): {tally.extract_errors}")
    print(f"Other exceptions: {sum(tally.failures.values())}")
    for name, count in tally.failures.most_common():
        print(f"  {count} x {name}")
    print(
        f"CPU time per page: median {statistics.median(tally.times):.2f} ms, "
        f"max {tally.slowest[0]:.0f} ms ({tally.slowest[1]})"
    )
    if tally.failures or tally.slowest[0] > SLOW_MS:
        print(f"Inputs kept in {FAILURES}")
        sys.exit(1)


if __name__ == "__main__":
    main()
