"""The language of an output, judged independently of the pipeline.

The pipeline checks its own outputs with langdetect (after an alphabet rule) and retries when
they come out wrong; scoring them with the same detector would only confirm its own verdict.
Evaluations score language with Lingua (`lingua-language-detector`, models inside the package),
and report where the two detectors disagree so a reader can look at those outputs.
"""

from __future__ import annotations

from functools import cache

from lingua import Language, LanguageDetector, LanguageDetectorBuilder

from docassist.pipelines.language import detect_language

_LANGUAGES = (
    Language.RUSSIAN,
    Language.ENGLISH,
    Language.UKRAINIAN,
    Language.BELARUSIAN,
    Language.KAZAKH,
    Language.GERMAN,
    Language.FRENCH,
    Language.SPANISH,
    Language.ITALIAN,
    Language.PORTUGUESE,
)


@cache
def _detector() -> LanguageDetector:
    return LanguageDetectorBuilder.from_languages(*_LANGUAGES).build()


def judged_language(text: str) -> str | None:
    """ISO 639-1 code by Lingua, or None when the text is empty or undecidable."""
    if not text.strip():
        return None
    found = _detector().detect_language_of(text)
    return found.iso_code_639_1.name.lower() if found else None


def language_verdicts(text: str) -> dict[str, str | None]:
    """Lingua's verdict (what evaluations score) beside the pipeline's own detector's."""
    return {
        "language": judged_language(text),
        "pipeline_language": detect_language(text).code if text.strip() else None,
    }
