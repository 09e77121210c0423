"""What an answer says in the reader's language when the model's words are not the answer: no
documents match, the documents do not answer, or the passage that does answer, quoted."""

from __future__ import annotations

NO_CONTEXT = {
    "ru": "В пространстве «{space}» не нашлось документов по этому вопросу, поэтому ответить по ним нельзя.",
    "uk": "У просторі «{space}» не знайшлося документів із цього питання, тому відповісти за ними неможливо.",
    "en": "No documents in space '{space}' match this question, so there is nothing to answer from.",
}


NOT_IN_DOCUMENTS = {
    "ru": "В документах пространства «{space}» нет ответа на этот вопрос.",
    "uk": "У документах простору «{space}» немає відповіді на це питання.",
    "be": "У дакументах прасторы «{space}» няма адказу на гэтае пытанне.",
    "kk": "«{space}» кеңістігінің құжаттарында бұл сұраққа жауап жоқ.",
    "en": "The documents in space '{space}' do not answer this question.",
    "de": "Die Dokumente im Bereich „{space}“ beantworten diese Frage nicht.",
    "fr": "Les documents de l'espace « {space} » ne répondent pas à cette question.",
    "es": "Los documentos del espacio «{space}» no responden a esta pregunta.",
    "it": "I documenti dello spazio «{space}» non rispondono a questa domanda.",
    "pt": "Os documentos do espaço «{space}» não respondem a esta pergunta.",
}

QUOTED = {
    "ru": "В документе сказано: «{quote}»",
    "uk": "У документі сказано: «{quote}»",
    "be": "У дакуменце сказана: «{quote}»",
    "kk": "Құжатта былай делінген: «{quote}»",
    "en": "The document says: “{quote}”",
    "de": "Im Dokument steht: „{quote}“",
    "fr": "Le document dit : « {quote} »",
    "es": "El documento dice: «{quote}»",
    "it": "Il documento dice: «{quote}»",
    "pt": "O documento diz: «{quote}»",
}


def phrase(table: dict[str, str], language: str, **values: str) -> str:
    return table.get(language, table["en"]).format(**values)


def quoted(language: str, quote: str) -> str:
    """The passage that answers, introduced in the question's language, on one line."""
    return phrase(QUOTED, language, quote=" ".join(quote.split()))


def quote_frame(language: str) -> tuple[str, str]:
    """What comes before and after the quote in `quoted`."""
    before, _, after = QUOTED.get(language, QUOTED["en"]).partition("{quote}")
    return before, after
