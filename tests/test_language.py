"""Language detection: deterministic, right on short Russian text."""

from __future__ import annotations

import pytest

from docassist.pipelines.language import detect_language


@pytest.mark.parametrize(
    "text",
    [
        "Привет",
        "Что это?",
        "Да",
        "Кто автор?",
        "ООО «Ромашка»",
        "Сколько стоит 5 кг?",
        "Расскажи подробно обо всем",
        "Дай краткий обзор",
    ],
)
def test_short_russian_is_russian(text):
    assert detect_language(text).code == "ru"


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("What is photosynthesis and why does it matter for life on Earth?", "en"),
        ("Це речення написане українською мовою, а не російською.", "uk"),
        ("Der Hund läuft schnell über die Straße und bellt sehr laut.", "de"),
        ("Отчёт по проекту Apollo: итоги Q3 и план на Q4", "ru"),
    ],
)
def test_languages(text, code):
    assert detect_language(text).code == code


def test_detection_is_deterministic():
    text = "Le chat dort. The cat sleeps. Die Katze schläft."
    assert len({detect_language(text).code for _ in range(20)}) == 1
