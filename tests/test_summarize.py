"""Summaries: word budget, sentence boundaries, abbreviations, duplicates, fallbacks."""

from __future__ import annotations

import pytest

from digest.models import Article
from digest.summarize import ELLIPSIS, near_duplicate, plain, summarize, summary_text, trim


def words(n: int, word: str = "word") -> str:
    return " ".join([word] * n)


def sentence(n: int, word: str = "word") -> str:
    """A sentence of ``n`` words, capitalised, ending with a full stop."""
    return f"{word.capitalize()} {words(n - 1, word)}."


def test_text_within_budget_is_kept_whole_without_ellipsis() -> None:
    assert trim("One short sentence.  Another   one.", 60) == "One short sentence. Another one."


def test_cut_falls_at_last_sentence_end_inside_budget() -> None:
    text = f"{sentence(20)} {sentence(20)} {sentence(30)}"
    result = trim(text, 50)
    assert result == f"{sentence(20)} {sentence(20)}"
    assert not result.endswith(ELLIPSIS)


def test_no_sentence_end_cuts_at_word_with_ellipsis() -> None:
    result = trim(words(80), 60)
    assert result.endswith(ELLIPSIS)
    assert len(result.split()) == 60


def test_trailing_punctuation_is_not_left_before_the_ellipsis() -> None:
    assert trim(words(59) + " last, more words here", 60).endswith("last" + ELLIPSIS)


@pytest.mark.parametrize(
    ("language", "text_with_abbreviations"),
    [
        ("en", "Officials in the U.S. and Dr. Adams met on Nov. 3 with Mr. J. Smith"),
        ("en", "The U.K. said e.g. ports and approx. four sites"),
        ("fr", "M. Dupont et Mme. Leroux ont vu le Dr. Martin"),
        ("de", "Am 3. Oktober sagte Prof. Weber z. B. dass die Nr. 4 bzw. usw. gilt"),
        ("de", "Im 19. Jahrhundert wuchs die Stadt schnell"),
        ("es", "El Sr. Gómez y la Sra. Ruiz viajaron a EE. UU. con el Dr. Pérez"),
    ],
)
def test_abbreviations_do_not_end_a_sentence(language: str, text_with_abbreviations: str) -> None:
    # The only real sentence end is after the filler; a cut at an abbreviation would
    # leave the sentence broken in two.
    text = f"{sentence(25)} {text_with_abbreviations} {words(40)}."
    result = trim(text, 55, language)
    assert result == sentence(25), result


def test_question_and_exclamation_end_sentences_in_french_spacing() -> None:
    text = f"{words(25)} vraiment ! Et {words(40)} encore."
    assert trim(text, 50, "fr") == f"{words(25)} vraiment !"


def test_spanish_inverted_question_starts_a_sentence() -> None:
    text = f"{sentence(25)} ¿qué pasó después? {words(40)}."
    assert trim(text, 35, "es") == sentence(25)


def test_lowercase_after_a_dot_is_not_a_sentence_start() -> None:
    text = f"{words(25)} version 2.0. and {words(40)}."
    assert trim(text, 50).endswith(ELLIPSIS)


def test_summary_is_standfirst_then_lead() -> None:
    article = Article(
        url="https://n.example/a",
        headline="H",
        standfirst="Ports are busier than ever.",
        lead="Cranes worked through the night at the container terminal as ships queued offshore.",
    )
    assert summary_text(article, 60) == (
        "Ports are busier than ever. Cranes worked through the night at the container "
        "terminal as ships queued offshore."
    )


def test_lead_restating_standfirst_is_not_said_twice() -> None:
    article = Article(
        url="https://n.example/a",
        headline="H",
        standfirst="The city council approved the new tram line on Tuesday.",
        lead="On Tuesday the city council approved the new tram line.",
    )
    result = summary_text(article, 60)
    assert result.count("tram line") == 1


def test_falls_back_to_feed_summary_then_first_paragraph() -> None:
    bare = Article(url="https://n.example/a", headline="H")
    assert summary_text(bare, 60, fallback="<p>Feed says <b>this</b> &amp; that.</p>") == (
        "Feed says this & that."
    )
    with_paragraph = Article(url="https://n.example/a", headline="H", paragraphs=("Body first.",))
    assert summary_text(with_paragraph, 60) == "Body first."
    assert summary_text(bare, 60) == ""


def test_summary_respects_the_budget_across_both_parts() -> None:
    article = Article(
        url="https://n.example/a",
        headline="H",
        standfirst=sentence(30, "stand"),
        lead=f"{sentence(20, 'lead')} {sentence(40, 'more')}",
    )
    result = summary_text(article, 60)
    assert len(result.split()) <= 60
    assert result == f"{sentence(30, 'stand')} {sentence(20, 'lead')}"


def test_article_language_chooses_abbreviations() -> None:
    text = f"{sentence(25)} Am 3. Oktober {words(40)}."
    de = Article(url="https://n.example/a", headline="H", standfirst=text, language="de-AT")
    en = Article(url="https://n.example/a", headline="H", standfirst=text, language="en")
    assert summary_text(de, 50) == sentence(25)
    assert summary_text(en, 50) == f"{sentence(25)} Am 3."


def test_near_duplicate_threshold() -> None:
    assert near_duplicate("Rain fell in Oslo.", "In Oslo, rain fell all day long.")
    assert not near_duplicate("Rain fell in Oslo.", "Markets rallied in Tokyo.")


def test_summarize_makes_titles_plain_text() -> None:
    item = summarize(
        Article(
            url="https://n.example/a", headline="<em>Big</em> &amp; bold\nnews", section=" Asia "
        )
    )
    assert item.title == "Big & bold news"
    assert item.section == "Asia"
    assert plain("a\r\nb") == "a b"


@pytest.mark.parametrize(
    "opening",
    [
        "STOCKHOLM, Nov 18 (Northlight) — ",
        "LONDON — ",
        "WASHINGTON (Reuters) - ",
        "SÃO PAULO, 3 de novembro – ",
        "Lyon (AFP) - ",
        "BERLIN, 18. November (dpa) -- ",
    ],
)
def test_summary_starts_after_the_dateline(opening: str) -> None:
    article = Article(
        url="https://n.example/a",
        headline="H",
        standfirst=opening + "The harbour reopened on Tuesday after a week of storms.",
        lead=opening + "Cranes worked through the night as ships queued offshore.",
    )
    assert summary_text(article, 60) == (
        "The harbour reopened on Tuesday after a week of storms. "
        "Cranes worked through the night as ships queued offshore."
    )


@pytest.mark.parametrize(
    "text",
    [
        "NATO allies met on Monday in Brussels.",
        "US — and Europe — agreed on a plan.",
        "UK, EU and US - all agreed.",
        "A-B testing - the method - is old.",
        "The U.S. — and others — agreed.",
    ],
)
def test_text_without_a_dateline_is_kept(text: str) -> None:
    assert summary_text(Article(url="https://n.example/a", headline="H", standfirst=text)) == text


def test_an_items_picture_keeps_the_size_the_page_declared() -> None:
    article = Article(
        url="https://example.org/a",
        headline="Ferry",
        lead="The ferry sails again.",
        image="https://example.org/a.jpg",
        image_width=1600,
        image_height=900,
    )
    item = summarize(article)
    assert (item.image_width, item.image_height) == (1600, 900)
    bare = summarize(
        Article(url="https://example.org/b", headline="B", image_width=10, image_height=5)
    )
    assert (bare.image, bare.image_width, bare.image_height) == (None, None, None)
