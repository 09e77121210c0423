"""Where each passage sits: the sections extraction records, and the location a chunk gets from
the sections it overlaps, as the ingestion pipeline cuts it (no service needed)."""

from __future__ import annotations

import io

from docassist.pipelines.documents.extract import extract_document
from docassist.pipelines.documents.ingestion import CHUNK_OVERLAP, CHUNK_TOKENS
from docassist.pipelines.documents.locations import (
    Location,
    Locator,
    Part,
    Section,
    join_parts,
    merge,
    split_units,
    within,
)
from docassist.pipelines.search.matching import best_sentence
from docassist.pipelines.search.retrieval import match_location
from tests.test_formats import CSV_RU, epub_en, odt_en, pptx_ru, xlsx_ru


def locations(name: str, data: bytes) -> list[dict]:
    return [s.location.as_dict() for s in extract_document(name, data).sections]


def test_each_format_records_where_its_sections_sit():
    assert locations("deck.pptx", pptx_ru()) == [
        {"slide": 1, "title": "Проект «Северный мост»"},
        {"slide": 2, "title": "Подрядчики"},
    ]
    sheets = locations("revenue.xlsx", xlsx_ru())
    assert {"sheet": "Выручка", "rows": "3"} in sheets and {"sheet": "Штат", "rows": "2"} in sheets
    assert locations("phones.csv", CSV_RU)[-1] == {"rows": "4"}
    assert locations("harbour.epub", epub_en()) == [
        {"chapter": "Chapter One: Arrival"},
        {"chapter": "Chapter Two: The Ferry"},
    ]
    assert locations("lighthouse.odt", odt_en()) == [{"section": "Lighthouses of Scotland"}]


def test_docx_and_markdown_passages_sit_under_their_heading_path():
    import docx

    document = docx.Document()
    document.add_heading("Бюджет", 1)
    document.add_paragraph("Общий бюджет утверждён.")
    document.add_heading("Командировки", 2)
    document.add_paragraph("Поездки в Казань оплачивает отдел.")
    document.add_heading("Итоги", 1)
    buf = io.BytesIO()
    document.save(buf)
    extracted = extract_document("plan.docx", buf.getvalue())
    assert extracted.text == "Бюджет\nОбщий бюджет утверждён.\nКомандировки\nПоездки в Казань оплачивает отдел.\nИтоги"
    assert [s.location.section for s in extracted.sections] == ["Бюджет", "Бюджет › Командировки", "Итоги"]

    md = "Intro.\n\n# Budget\nTotal.\n\n## Travel\n```\n# a comment in code\n```\nTrips.\n"
    assert locations("notes.md", md.encode()) == [{"section": "Budget"}, {"section": "Budget › Travel"}]

    html = (
        "<html><body><p>Intro</p><h1>Budget <em>2026</em></h1><p>Total is five.</p><h2>Travel</h2>"
        "<p>Trips to Kazan.</p><script>var h1 = 1;</script><h1><a href='#'>End</a></h1><p>Done.</p></body></html>"
    )
    page = extract_document("page.html", html.encode())
    assert page.text == "Intro\nBudget\n2026\nTotal is five.\nTravel\nTrips to Kazan.\nEnd\nDone."
    assert [s.location.section for s in page.sections] == ["Budget 2026", "Budget 2026 › Travel", "End"]


def test_a_chunk_is_located_at_the_sections_it_overlaps():
    parts = [Part(f"Page {n} " + "word " * 400, Location(page=n)) for n in (1, 2, 3)]
    text, sections = join_parts(parts, str.strip)
    assert [s.location.page for s in sections] == [1, 2, 3] and text[sections[1].start :].startswith("Page 2")
    from llama_index.core.node_parser import SentenceSplitter

    locator = Locator(text, sections)
    chunks = SentenceSplitter(chunk_size=CHUNK_TOKENS, chunk_overlap=CHUNK_OVERLAP).split_text(text)
    found = [locator.place(chunk)[0] for chunk in chunks]
    assert found[0] == Location(page=1)
    assert any(loc == Location(page=1, page_end=2) for loc in found), found
    assert found[-1] == Location(page=3)
    assert Locator("no sections", []).place("no sections") == (None, [])


def test_a_chunk_across_two_pages_knows_where_each_page_starts_so_a_quote_names_its_own():
    parts = [
        Part("Первая страница. " + "слово " * 30, Location(page=1)),
        Part("Вторая страница. Зал закрыли.", Location(page=2)),
    ]
    text, sections = join_parts(parts, str.strip)
    location, places = Locator(text, sections).place(text)
    assert location == Location(page=1, page_end=2)
    second = text.index("Вторая")
    assert places == [(0, Location(page=1)), (second, Location(page=2))]
    quote = text.index("Зал закрыли.")
    assert within(places, quote, quote + len("Зал закрыли.")) == Location(page=2)
    assert within(places, 0, 10) == Location(page=1)
    assert within(places, second - 5, second + 5) == Location(page=1, page_end=2)  # a quote across the break
    assert Locator(text, sections[:1]).place(text)[1] == [], "a chunk within one section needs no places"


def test_merged_locations_widen_pages_and_rows_and_keep_the_first_of_the_rest():
    assert merge([Location(page=2), Location(page=3), Location(page=4)]) == Location(page=2, page_end=4)
    rows = [Location(sheet="Продажи"), Location(sheet="Продажи", rows="2"), Location(sheet="Продажи", rows="4")]
    assert merge(rows) == Location(sheet="Продажи", rows="2-4")
    slides = [Location(slide=1, title="A"), Location(slide=2, title="B"), Location(slide=3)]
    assert merge(slides) == Location(slide=1, slide_end=3, title="A"), "a chunk over three slides names its span"
    assert merge([Location(slide=2, title="B")]) == Location(slide=2, title="B")
    assert merge([]) is None
    assert Location.from_dict({"page": 3, "unknown": 1}) == Location(page=3)
    assert Location.from_dict(None) is None and Location.from_dict({}) is None
    assert Section(0, 1, Location(chapter="X")).location.as_dict() == {"chapter": "X"}


def test_a_workbook_is_chunked_sheet_by_sheet_so_no_chunk_holds_two_sheets():
    from llama_index.core.node_parser import SentenceSplitter

    extracted = extract_document("revenue.xlsx", xlsx_ru())
    units = split_units(extracted.text, extracted.sections)
    assert len(units) == 2 and "Казань" in units[0] and "Сотрудников" in units[1], units
    splitter = SentenceSplitter(chunk_size=CHUNK_TOKENS, chunk_overlap=CHUNK_OVERLAP)
    locator = Locator(extracted.text, extracted.sections)
    placed = [locator.place(piece) for unit in units for piece in splitter.split_text(unit)]
    assert [loc.sheet for loc, _ in placed] == ["Выручка", "Штат"], "one small chunk per sheet"
    for location, places in placed:  # each row's place within the chunk is on the chunk's sheet
        assert {place.sheet for _, place in places} <= {location.sheet}, places
    assert split_units("plain text", []) == ["plain text"], "other formats are chunked whole"


def test_the_sentence_that_matches_names_its_own_slide_in_a_chunk_over_three():
    text = "Обзор проекта.\n\nСроки и этапы.\n\nБюджет проекта утвердили в марте: сорок два миллиона рублей."
    second, third = text.index("Сроки"), text.index("Бюджет")
    places = [(0, Location(slide=1)), (second, Location(slide=2)), (third, Location(slide=3))]
    chunk = Location(slide=1, slide_end=3)
    assert match_location(text, "Какой бюджет у проекта?", chunk, places) == Location(slide=3)
    assert match_location(text, "сроки", chunk, places) == Location(slide=2)
    assert match_location(text, "погода в Тарусе", chunk, places) == chunk, "nothing matched: the chunk's span"
    assert match_location(text, "бюджет", Location(page=4), None) == Location(page=4), "one place: the chunk's"
    assert best_sentence(text, "утвердили бюджет") == (third, len(text))
