"""The languages the service works in: their names (`NAMES`, what prompts and logs call them) and
deterministic detection that is right on short Russian text. Below every feature: documents
detect a text's language, the LLM layer names it in prompts and checks a reply against it.

langdetect is random unless seeded and guesses wildly on a few words (it calls short
Russian phrases Bulgarian or Macedonian). The alphabet is a stronger signal: text written
mostly in Cyrillic without Ukrainian or Belarusian letters is Russian, whatever its length.
langdetect, seeded, decides the rest.
"""

from __future__ import annotations

from dataclasses import dataclass

from langdetect import DetectorFactory, LangDetectException, detect_langs

DetectorFactory.seed = 0

NAMES = {
    "ru": ("Russian", "Русский"),
    "en": ("English", "English"),
    "uk": ("Ukrainian", "Українська"),
    "be": ("Belarusian", "Беларуская"),
    "de": ("German", "Deutsch"),
    "fr": ("French", "Français"),
    "es": ("Spanish", "Español"),
    "it": ("Italian", "Italiano"),
    "pt": ("Portuguese", "Português"),
    "kk": ("Kazakh", "Қазақ"),
}
SUPPORTED_LANGUAGES = tuple(NAMES)  # what a summary may be asked for: the languages the prompts name
_SAMPLE_CHARS = 4000
_UKRAINIAN = set("іїєґІЇЄҐ")
_BELARUSIAN = set("ўЎ")
_KAZAKH = set("әғқңөұүһӘҒҚҢӨҰҮҺ")


@dataclass(frozen=True)
class Detected:
    code: str
    confidence: float

    @property
    def native_name(self) -> str:
        return NAMES.get(self.code, (self.code, self.code))[1]


def label(code: str) -> str:
    """`ru (Русский)`: the code and the language's own name, as the logs show it."""
    return f"{code} ({NAMES.get(code, (code, code))[1]})"


def _sample(text: str) -> str:
    """Beginning, middle and end of long texts: enough to decide, cheap to scan."""
    if len(text) <= _SAMPLE_CHARS:
        return text
    third = _SAMPLE_CHARS // 3
    mid = len(text) // 2
    return " ".join((text[:third], text[mid - third // 2 : mid + third // 2], text[-third:]))


def detect_language(text: str, default: str = "en") -> Detected:
    """The language of `text` as an ISO 639-1 code; the same text always gives the same answer."""
    sample = _sample(text)
    cyrillic = latin = 0
    specials: set[str] = set()
    for ch in sample:
        if not ch.isalpha():
            continue
        if "\u0400" <= ch <= "\u04ff":
            cyrillic += 1
            if ch in _UKRAINIAN or ch in _BELARUSIAN or ch in _KAZAKH:
                specials.add(ch)
        elif ch.isascii():
            latin += 1
    letters = cyrillic + latin
    if letters == 0:
        return Detected(default, 0.0)
    if cyrillic / letters >= 0.5:
        share = cyrillic / letters
        if specials & _UKRAINIAN:
            return Detected("uk", share)
        if specials & _BELARUSIAN:
            return Detected("be", share)
        if specials & _KAZAKH:
            return Detected("kk", share)
        return Detected("ru", share)
    try:
        best = detect_langs(sample)[0]
    except LangDetectException:
        return Detected(default, 0.0)
    if latin < 12 and best.lang != default:
        return Detected(default, 0.5)
    return Detected(best.lang, round(best.prob, 3))
