"""Read one article out of a fetched page: headline, standfirst, lead and body.

The page is parsed once with selectolax (lexbor). Metadata comes first from the
page's own declarations (JSON-LD, Open Graph, ``<meta>``, ``rel=canonical``), then
from visible markup; feed hints only fill what the page lacks. The body is found
with one scoring pass over paragraphs in the manner of Readability (text length and
commas credited to the parent in full and to further ancestors in shrinking shares,
class names scaling the score, link-heavy and boilerplate blocks left out), then
widened to the blocks the same body was cut into. Scripts, navigation, figures and
hidden blocks are dropped first; absurdly deep nesting is flattened before parsing.
The lead is the first body paragraph that is not a byline, caption, label or call
to action.

Every text field is clean text: tags dropped, entities decoded, no-break spaces
turned into spaces, whitespace folded; curly quotes and dashes are kept.

The package, in the order a page goes through it: ``decode`` (bytes to text, nesting guard),
``meta`` (what the head declares), ``headline``, ``fields`` (standfirst, section, byline, date,
picture, URL), ``paragraphs`` and ``prose`` (reading order, boilerplate verdicts) and ``body``
(scoring); ``article`` runs them. ``text`` holds the cleaning and comparison helpers,
``css`` the checks of a source's own selectors (``extract:`` in schedules.yaml).
"""

from .article import extract, extract_html
from .decode import decode_html

__all__ = ["decode_html", "extract", "extract_html"]
