"""The email against the caniemail data: what it uses works in the clients people use.

Gmail (web, apps, mobile web), Outlook (Windows, Outlook.com), Yahoo and Apple Mail:
every CSS property and HTML feature the built email uses is looked up in the vendored
caniemail snapshot; one that some of them does not support needs a fallback, named in a
``{# fallback <feature>: ... #}`` comment in ``templates/email/issue.mjml``.
"""

from __future__ import annotations

import re

import pytest

from digest.render import Renderer, default_template_dir
from tests.support import DATA
from tests.support.caniemail import (
    FEATURES,
    css_features,
    features_used,
    selector_features,
    style_sheets,
)
from tests.support.caniemail import unsupported as unsupported_in
from tests.support.email_samples import config, sample_issue

FALLBACK = re.compile(r"\{# fallback ([a-z0-9-]+): \S[^#]*#\}")


@pytest.fixture(scope="module")
def html(tmp_path_factory: pytest.TempPathFactory) -> str:
    cfg = config(tmp_path_factory.mktemp("caniemail"))
    return Renderer(cfg, cfg.newsletter("weekly")).render(sample_issue(30)).html


def fallbacks() -> dict[str, int]:
    source = (default_template_dir() / "issue.mjml").read_text(encoding="utf-8")
    names = FALLBACK.findall(source)
    return {name: names.count(name) for name in names}


def test_every_feature_is_known_to_caniemail(html: str) -> None:
    used, unknown = features_used(html)
    assert unknown == set(), "CSS properties with no caniemail entry to check them against"
    assert {"html-img", "html-h1-h6", "css-padding", "css-at-media"} <= used


def test_a_feature_some_client_lacks_has_a_fallback_beside_it(html: str) -> None:
    used, _ = features_used(html)
    needed = {slug: unsupported_in(slug) for slug in used if unsupported_in(slug)}
    named = fallbacks()
    missing = {slug: clients for slug, clients in needed.items() if slug not in named}
    assert missing == {}, "add a '{# fallback <feature>: how #}' comment to issue.mjml"
    # Every fallback comment is for a feature the email uses and a client lacks, once.
    assert set(named) == set(needed)
    assert all(count == 1 for count in named.values())


def test_chained_class_selectors_and_position_are_not_used(html: str) -> None:
    used, _ = features_used(html)
    # Outlook for Windows applies only the first class of ".a.b"; Gmail, Outlook and
    # Yahoo drop position (text hidden with it shows).
    assert "css-selector-chaining" not in used
    assert "css-position" not in used and "css-left-right-top-bottom" not in used


def test_style_keeps_only_media_queries_and_dark_mode(html: str) -> None:
    sheets = style_sheets(html)
    assert sheets
    for sheet in sheets:
        outside = re.sub(r"@media[^{]*\{(?:[^{}]*\{[^{}]*\})*[^{}]*\}", "", sheet)
        rules = re.findall(r"([^{}]+)\{", outside)
        assert all(rule.strip().startswith("[data-ogsc]") for rule in rules), rules


def test_feature_detection_sees_what_it_should() -> None:
    unknown: set[str] = set()
    found = css_features("position:absolute; top:0; display:none !important; width:50%", unknown)
    assert found == {
        "css-position",
        "css-left-right-top-bottom",
        "css-display",
        "css-display-none",
        "css-important",
        "css-width",
        "css-unit-percent",
    }
    assert css_features("frobnicate: 1", unknown) == set() and unknown == {"frobnicate"}
    assert "css-selector-chaining" in selector_features(".item.top h3")
    assert selector_features(".hl") == {"css-selector-class"}


def test_the_snapshot_has_every_client_and_its_licence() -> None:
    assert set(FEATURES["css-position"]["support"]) == {
        "gmail/desktop-webmail",
        "gmail/ios",
        "gmail/android",
        "gmail/mobile-webmail",
        "outlook/windows",
        "outlook/outlook-com",
        "yahoo/desktop-webmail",
        "yahoo/ios",
        "yahoo/android",
        "apple-mail/macos",
        "apple-mail/ios",
    }
    assert unsupported_in("css-position")[:2] == ["gmail/android", "gmail/desktop-webmail"]
    licence = DATA / "caniemail" / "LICENSE"
    assert "MIT License" in licence.read_text(encoding="utf-8")
