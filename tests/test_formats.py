"""PPTX, XLSX, CSV/TSV, ODT/ODS/ODP and EPUB: files the format libraries write, read back as a user
sees them (the stored text, the language, a search that finds the fact in that document first),
and hostile versions of them refused quickly, with nothing written and the service still well."""

from __future__ import annotations

import io
import time
import zipfile
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from docassist.pipelines.documents.extract import extract_text, file_kind
from docassist.pipelines.documents.limits import ExtractLimits
from docassist.pipelines.errors import MarkupTooLarge, TooManyRows, UnreadableDocument
from tests.conftest import Service, ingest
from tests.inprocess import start_in_process

SPACE = "formats"
ROW_CAP = 500


def pptx_ru() -> bytes:
    from pptx import Presentation
    from pptx.util import Inches

    deck = Presentation()
    first = deck.slides.add_slide(deck.slide_layouts[1])
    first.shapes.title.text = "Проект «Северный мост»"
    first.placeholders[1].text = "Строительство моста через Северную Двину начнётся летом."
    first.notes_slide.notes_text_frame.text = "Бюджет проекта утвердили в марте: сорок два миллиона рублей."
    second = deck.slides.add_slide(deck.slide_layouts[5])
    second.shapes.title.text = "Подрядчики"
    table = second.shapes.add_table(2, 2, Inches(1), Inches(2), Inches(6), Inches(1)).table
    for (r, c), text in {(0, 0): "Работа", (0, 1): "Подрядчик", (1, 0): "Опоры", (1, 1): "ООО «Мостострой»"}.items():
        table.cell(r, c).text = text
    buf = io.BytesIO()
    deck.save(buf)
    return buf.getvalue()


def xlsx_ru(rows: int = 0) -> bytes:
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Выручка"
    sheet.append(["Месяц", "Город", "Выручка, руб."])
    sheet.append(["Февраль", "Казань", 418000])
    sheet.append(["Март", "Самара", 612000])
    for i in range(rows):
        sheet.append([f"День {i}", "Тверь", i])
    staff = book.create_sheet("Штат")
    staff.append(["Город", "Сотрудников"])
    staff.append(["Самара", 14])
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()


CSV_RU = (
    "Сотрудник;Отдел;Внутренний телефон\r\n"
    "Иванова Мария;Бухгалтерия;2214\r\n"
    "Петров Олег;Склад;3120\r\n"
    '"Сидоров, Иван";Отдел кадров;1105\r\n'
).encode("cp1251")


def odt_en() -> bytes:
    from odf.opendocument import OpenDocumentText
    from odf.text import H, P

    document = OpenDocumentText()
    document.text.addElement(H(outlinelevel=1, text="Lighthouses of Scotland"))
    document.text.addElement(P(text="The lighthouse at Cape Wrath was built in 1828 by Robert Stevenson."))
    document.text.addElement(P(text="Its light can be seen from twenty-two nautical miles at sea."))
    buf = io.BytesIO()
    document.write(buf)
    return buf.getvalue()


def epub_en() -> bytes:
    from ebooklib import epub

    book = epub.EpubBook()
    book.set_identifier("harbour-1")
    book.set_title("The Harbour")
    book.set_language("en")
    chapters = {
        "one": ("Chapter One: Arrival", "Anna arrived in the small fishing town on a grey October evening."),
        "two": ("Chapter Two: The Ferry", "The ferry to the island leaves the harbour at seven every morning."),
    }
    items = {}
    for key in ("two", "one"):  # added in reverse: the spine, not the manifest, gives the reading order
        title, text = chapters[key]
        items[key] = epub.EpubHtml(title=title, file_name=f"{key}.xhtml", lang="en")
        items[key].content = f"<html><body><h1>{title}</h1><p>{text}</p></body></html>"
        book.add_item(items[key])
    book.toc = [items["one"], items["two"]]
    book.add_item(epub.EpubNcx())
    book.add_item(epub.EpubNav())
    book.spine = ["nav", items["one"], items["two"]]
    buf = io.BytesIO()
    epub.write_epub(buf, book)
    return buf.getvalue()


def with_part(data: bytes, name: str, content: bytes) -> bytes:
    """`data` (a zip) with the part `name` replaced by, or added as, `content`."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            if item.filename != name:
                dst.writestr(item, src.read(item))
        dst.writestr(name, content)
    return out.getvalue()


def laughs(root: str) -> bytes:
    """A billion laughs: ten levels of ten references each, 10^9 'lol's once expanded."""
    entities = ['<!ENTITY lol0 "lol">'] + [f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)]
    return (
        f'<?xml version="1.0"?><!DOCTYPE {root} [{"".join(entities)}]>'
        f'<{root} xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><t>&lol9;</t></{root}>'
    ).encode()


def zip_bomb_pptx() -> bytes:
    """A real deck with one more part that unpacks to 1 GB of zeros (about 1 MB packed)."""
    out = io.BytesIO(pptx_ru())
    block = bytes(1 << 20)
    with (
        zipfile.ZipFile(out, "a", zipfile.ZIP_DEFLATED, compresslevel=1) as z,
        z.open("ppt/media/padding.xml", "w", force_zip64=True) as fh,
    ):
        for _ in range(1024):
            fh.write(block)
    return out.getvalue()


DOCUMENTS = {
    "deck.pptx": pptx_ru,
    "revenue.xlsx": xlsx_ru,
    "phones.csv": lambda: CSV_RU,
    "lighthouse.odt": odt_en,
    "harbour.epub": epub_en,
}
# per file: the language, text its stored text must hold, a question, and what the first hit must say
EXPECTED = {
    "deck.pptx": (
        "ru",
        ["Слайд 1: Проект «Северный мост»", "Заметки: Бюджет проекта утвердили в марте", "Опоры | ООО «Мостострой»"],
        "Когда утвердили бюджет проекта моста?",
        "сорок два миллиона",
    ),
    "revenue.xlsx": (
        "ru",
        ["Выручка\nМесяц | Город | Выручка, руб.", "Месяц: Март; Город: Самара; Выручка, руб.: 612000", "Штат"],
        "выручка в Самаре в марте",
        "Город: Самара; Выручка, руб.: 612000",
    ),
    "phones.csv": (
        "ru",
        ["Сотрудник: Иванова Мария; Отдел: Бухгалтерия; Внутренний телефон: 2214", "Сотрудник: Сидоров, Иван;"],
        "внутренний телефон бухгалтерии",
        "Внутренний телефон: 2214",
    ),
    "lighthouse.odt": (
        "en",
        ["Lighthouses of Scotland\nThe lighthouse at Cape Wrath was built in 1828 by Robert Stevenson."],
        "Who built the lighthouse at Cape Wrath?",
        "Robert Stevenson",
    ),
    "harbour.epub": (
        "en",
        ["Chapter One: Arrival", "The ferry to the island leaves the harbour at seven every morning."],
        "When does the ferry leave the harbour?",
        "seven every morning",
    ),
}


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory, llama_env: dict[str, str]) -> Iterator[Service]:
    service = start_in_process(
        tmp_path_factory.mktemp("formats"), MAX_PARSE_MB="16", MAX_SHEET_ROWS=str(ROW_CAP), **llama_env
    )
    yield service
    service.stop()


@pytest.fixture(scope="module")
def http(svc: Service) -> Iterator[httpx.Client]:
    with svc.client() as client:
        yield client


@pytest.fixture(scope="module")
def ingested(http: httpx.Client) -> dict[str, dict]:
    """Every format in one space, so each search competes with the other documents."""
    answers = {}
    for name, make in DOCUMENTS.items():
        r = ingest(http, SPACE, name, make())
        assert r.status_code == 200, (name, r.text)
        answers[name] = r.json()
    return answers


@pytest.mark.parametrize("name", list(DOCUMENTS))
def test_each_format_is_read_as_its_reader_sees_it_and_found_by_search(http, ingested, name):
    language, fragments, question, answer = EXPECTED[name]
    doc = ingested[name]
    assert doc["language"] == language
    text = http.get(f"/documents/{doc['doc_id']}/text", params={"space_id": SPACE}).text
    for fragment in fragments:
        assert fragment in text, (fragment, text)
    hit = http.post("/search", json={"q": question, "space_id": SPACE, "top_k": 3}).json()["sources"][0]
    assert hit["doc_id"] == doc["doc_id"], (question, hit["filename"])
    assert answer in hit["text"]


# where the first hit sits: each test document is one chunk (a workbook one per sheet), located at its
# first section, widened to its last slide or row
HIT_LOCATIONS = {
    "deck.pptx": {"slide": 1, "slide_end": 2, "title": "Проект «Северный мост»"},
    "revenue.xlsx": {"sheet": "Выручка", "rows": "1-3"},
    "phones.csv": {"rows": "1-4"},
    "lighthouse.odt": {"section": "Lighthouses of Scotland"},
    "harbour.epub": {"chapter": "Chapter One: Arrival"},
}


# where the sentence that matched sits: the chapter, row or slide of the fact, not the chunk's first
HIT_MATCHES = {
    "deck.pptx": {"slide": 1, "title": "Проект «Северный мост»"},  # the slide's notes hold the budget
    "revenue.xlsx": {"sheet": "Выручка", "rows": "3"},
    "phones.csv": {"rows": "2"},
    "lighthouse.odt": {"section": "Lighthouses of Scotland"},
    "harbour.epub": {"chapter": "Chapter Two: The Ferry"},
}


@pytest.mark.parametrize("name", list(DOCUMENTS))
def test_each_hit_says_where_it_sits_and_where_its_matching_sentence_sits(http, ingested, name):
    question = EXPECTED[name][2]
    hit = http.post("/search", json={"q": question, "space_id": SPACE, "top_k": 1}).json()["sources"][0]
    assert hit["location"] == HIT_LOCATIONS[name], hit
    assert hit["match_location"] == HIT_MATCHES[name], hit


def test_a_workbook_hit_names_the_sheet_of_its_fact(http, ingested):
    hit = http.post("/search", json={"q": "сколько сотрудников в Самаре", "space_id": SPACE, "top_k": 1}).json()
    [source] = hit["sources"]
    assert source["doc_id"] == ingested["revenue.xlsx"]["doc_id"], source
    assert source["location"]["sheet"] == "Штат" and source["match_location"]["sheet"] == "Штат", source
    assert "Выручка" not in source["text"], "a chunk holds one sheet's rows"


def test_slides_are_in_order_and_epub_chapters_in_spine_order(http, ingested):
    deck = http.get(f"/documents/{ingested['deck.pptx']['doc_id']}/text", params={"space_id": SPACE}).text
    assert deck.index("Слайд 1:") < deck.index("Северную Двину") < deck.index("Слайд 2: Подрядчики")
    book = http.get(f"/documents/{ingested['harbour.epub']['doc_id']}/text", params={"space_id": SPACE}).text
    assert book.index("grey October evening") < book.index("Chapter Two") < book.index("seven every morning")
    assert book.count("Chapter One: Arrival") == 1, "the table of contents is not read as a chapter"


def refused_quickly(http: httpx.Client, name: str, data: bytes) -> httpx.Response:
    """Upload a hostile file into a space of its own; it must be answered within seconds, leave the
    space empty, and the service must read the next file as before."""
    started = time.monotonic()
    r = ingest(http, "hostile_formats", name, data)
    assert time.monotonic() - started < 15, "refused quickly"
    assert http.get("/documents", params={"space_id": "hostile_formats"}).json()["documents"] == []
    assert http.get("/health").status_code == 200
    after = ingest(http, "hostile_after", f"after-{name}.txt", f"После файла {name} сервис читает дальше.".encode())
    assert after.status_code == 200, after.text
    assert "Error" not in r.json()["error"]["message"] and "Exception" not in r.json()["error"]["message"]
    return r


def test_a_pptx_that_unpacks_to_a_gigabyte_is_refused_before_it_is_unpacked(http, svc):
    before = svc.rss_kb()
    r = refused_quickly(http, "bomb.pptx", zip_bomb_pptx())
    assert r.status_code == 413 and r.json()["error"]["code"] == "markup_too_large"
    assert "PPTX" in r.json()["error"]["message"] and "MAX_PARSE_MB" in r.json()["error"]["message"]
    assert svc.rss_kb() - before < 100_000


def test_an_xlsx_with_an_entity_expansion_bomb_is_refused(http):
    r = refused_quickly(http, "laughs.xlsx", with_part(xlsx_ru(), "xl/sharedStrings.xml", laughs("sst")))
    assert r.status_code == 422 and r.json()["error"]["code"] == "unreadable_document"
    assert "entity" in r.json()["error"]["message"] and "xl/sharedStrings.xml" in r.json()["error"]["message"]


def test_a_sheet_past_the_row_cap_is_refused_naming_it(http):
    r = refused_quickly(http, "long.xlsx", xlsx_ru(rows=ROW_CAP))
    assert r.status_code == 413 and r.json()["error"]["code"] == "too_many_rows"
    assert f"MAX_SHEET_ROWS allows {ROW_CAP}" in r.json()["error"]["message"]


# Pure functions: no service needed.


def test_the_new_types_are_supported_and_others_still_415():
    for name in ("a.pptx", "b.XLSX", "c.csv", "d.tsv", "e.odt", "f.ods", "g.odp", "h.epub"):
        assert file_kind(name) == "." + name.rsplit(".", 1)[1].lower()
    with pytest.raises(Exception, match=r"\.epub.*\.xlsx") as caught:
        file_kind("letter.rtf")
    assert type(caught.value).__name__ == "UnsupportedMediaType"


def test_csv_delimiter_and_encoding_are_sniffed():
    utf8_commas = b'name,city,score\nAnna,Oslo,7.5\nBen,"Rome, Italy",9\n'
    assert "name: Ben; city: Rome, Italy; score: 9" in extract_text("scores.csv", utf8_commas)
    tabs = "Товар\tЦена, руб.\nЧай\t120,50\n".encode("cp1251")
    assert extract_text("prices.tsv", tabs).endswith("Товар: Чай; Цена, руб.: 120,50")
    semicolons_with_decimal_commas = "Товар;Цена\nЧай;120,50\nКофе;99,9\nСахар;55\n".encode("cp1251")
    assert "Товар: Кофе; Цена: 99,9" in extract_text("shop.csv", semicolons_with_decimal_commas)
    assert "Город: Самара" in extract_text("p.csv", "Город\nСамара\n".encode("cp1251"))


def test_a_csv_past_the_row_cap_is_refused():
    rows = "a;b\n" + "".join(f"{i};x\n" for i in range(50))
    with pytest.raises(TooManyRows, match="MAX_SHEET_ROWS"):
        extract_text("many.csv", rows.encode(), ExtractLimits(max_sheet_rows=20))


def test_an_english_deck_has_english_labels_and_empty_slides_keep_their_numbers():
    from pptx import Presentation

    deck = Presentation()
    deck.slides.add_slide(deck.slide_layouts[6])  # blank: no title, no text
    slide = deck.slides.add_slide(deck.slide_layouts[1])
    slide.shapes.title.text = "Quarterly results"
    slide.placeholders[1].text = "Revenue grew by nine percent."
    slide.notes_slide.notes_text_frame.text = "Mention the new office in Leeds."
    buf = io.BytesIO()
    deck.save(buf)
    text = extract_text("results.pptx", buf.getvalue())
    assert text == (
        "Slide 1\n\nSlide 2: Quarterly results\nRevenue grew by nine percent.\nNotes: Mention the new office in Leeds."
    )


def _text_frame(text: str, role: str | None = None, height: str = "10cm", y: str = "5cm") -> Any:
    """An ODP frame holding one paragraph; `role` is its presentation class (title, notes)."""
    from odf.draw import Frame, TextBox
    from odf.namespaces import PRESENTATIONNS
    from odf.text import P

    frame = Frame(width="20cm", height=height, x="1cm", y=y)
    if role:
        frame.setAttrNS(PRESENTATIONNS, "class", role)
    box = TextBox()
    box.addElement(P(text=text))
    frame.addElement(box)
    return frame


def test_ods_rows_keep_their_headers_and_odp_slides_their_notes():
    from odf.draw import Page
    from odf.opendocument import OpenDocumentPresentation, OpenDocumentSpreadsheet
    from odf.presentation import Notes
    from odf.style import MasterPage, PageLayout
    from odf.table import Table, TableCell, TableRow
    from odf.text import P

    sheet_doc = OpenDocumentSpreadsheet()
    table = Table(name="Продажи")
    for values in (("Месяц", "Город", "Выручка"), ("Март", "Самара", "612000")):
        row = TableRow()
        for value in values:
            cell = TableCell()
            cell.addElement(P(text=value))
            row.addElement(cell)
        table.addElement(row)
    table.addElement(TableRow(numberrowsrepeated=1048000))  # how office suites pad a sheet: empty, repeated
    sheet_doc.spreadsheet.addElement(table)
    buf = io.BytesIO()
    sheet_doc.write(buf)
    assert (
        extract_text("sales.ods", buf.getvalue())
        == "Продажи\nМесяц | Город | Выручка\nМесяц: Март; Город: Самара; Выручка: 612000"
    )

    slides = OpenDocumentPresentation()
    layout = PageLayout(name="L")
    slides.automaticstyles.addElement(layout)
    master = MasterPage(name="M", pagelayoutname=layout)
    slides.masterstyles.addElement(master)
    page = Page(masterpagename=master)
    page.addElement(_text_frame("Планы на год", "title", height="3cm", y="1cm"))
    page.addElement(_text_frame("Открыть филиал в Твери."))
    notes = Notes()
    notes.addElement(_text_frame("Аренду согласовать до мая.", "notes"))
    page.addElement(notes)
    slides.presentation.addElement(page)
    buf = io.BytesIO()
    slides.write(buf)
    assert extract_text("plans.odp", buf.getvalue()) == (
        "Слайд 1: Планы на год\nОткрыть филиал в Твери.\nЗаметки: Аренду согласовать до мая."
    )


@pytest.mark.parametrize(
    ("name", "make", "part"),
    [
        ("laughs.pptx", pptx_ru, "ppt/slides/slide1.xml"),
        ("laughs.odt", odt_en, "content.xml"),
        ("laughs.epub", epub_en, "EPUB/one.xhtml"),
    ],
)
def test_entity_bombs_are_refused_in_every_zip_format_before_a_library_parses_them(name, make, part):
    started = time.monotonic()
    with pytest.raises(UnreadableDocument, match="entity") as caught:
        extract_text(name, with_part(make(), part, laughs("root")))
    assert time.monotonic() - started < 5
    assert part in str(caught.value)


def test_an_entity_bomb_in_utf16_is_refused_too():
    bomb = laughs("sst").decode().replace('<?xml version="1.0"?>', '<?xml version="1.0" encoding="UTF-16"?>')
    with pytest.raises(UnreadableDocument, match="entity"):
        extract_text("laughs16.xlsx", with_part(xlsx_ru(), "xl/sharedStrings.xml", bomb.encode("utf-16")))


def test_a_part_with_an_extreme_compression_ratio_is_refused_in_any_zip_format():
    data = with_part(epub_en(), "EPUB/one.xhtml", b"<html><body><p>" + b"a" * (8 << 20) + b"</p></body></html>")
    with pytest.raises(MarkupTooLarge, match="MAX_EXPANSION_RATIO") as caught:
        extract_text("ratio.epub", data)
    assert "EPUB" in str(caught.value)


@pytest.mark.parametrize("name", ["broken.pptx", "broken.xlsx", "broken.odt", "broken.epub", "broken.ods"])
def test_a_broken_file_says_in_words_what_it_is_not(name):
    with pytest.raises(UnreadableDocument) as caught:
        extract_text(name, b"PK\x03\x04 this is not a zip at all")
    message = str(caught.value)
    assert name in message and "zip of" in message
    assert "Error" not in message and "Exception" not in message
