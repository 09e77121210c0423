// docassist's web page: plain ES module, no build step, nothing loaded from elsewhere.
// Every text from the server (file names, document text, answers) goes into the page as text
// (textContent), never as HTML. Signing people in (LDAP, OIDC), their spaces and roles, and the
// audit trail are auth.js's; this file hands it the page's words and API helpers (`page` below).

import { People } from "./auth.js";

const $ = (id) => document.getElementById(id);
const KEYS = {
  lang: "docassist.lang",
  space: "docassist.space",
  spaces: "docassist.spaces",
  key: "docassist.key",
  draft: "docassist.draft",
};
const SPACE_RE = /^[A-Za-z0-9_-]{1,64}$/;
const POLL_MS = 1500;

// The API key and a question kept over a sign-in (auth.js) live in this tab's sessionStorage
// only (gone when the tab closes); the language and the spaces are remembered in localStorage.
const storageFor = (k) => (k === KEYS.key || k === KEYS.draft ? sessionStorage : localStorage);
const store = {
  get(k) {
    try { return storageFor(k).getItem(k); } catch { return null; }
  },
  set(k, v) {
    try { if (v == null) storageFor(k).removeItem(k); else storageFor(k).setItem(k, v); } catch { /* private mode */ }
  },
};

// ------------------------------------------------------------------ words
// A value is a string, a function of arguments, or plural forms ({one, few, many, other}).
const DICT = {
  en: {
    skip: "Skip to content",
    uiLanguage: "Language",
    space: "Space",
    open: "Open",
    spaceHint: "Letters, digits, _ and -, up to 64. The space is remembered on this computer.",
    spaceInvalid: "A space name is 1 to 64 letters, digits, _ or -.",
    apiKey: "API key",
    saveKey: "Save key",
    forgetKey: "Forget key",
    keyNeeded: "This service needs an API key. Enter it to continue.",
    keyRejected: "The API key was not accepted. Check it and try again.",
    keyForbidden: (s) => `This API key cannot reach the space “${s}”. Choose another space or another key.`,
    keySaved: "Key kept in this tab until you close it.",
    uploadTitle: "Add documents",
    files: "Files",
    dropTitle: "Choose files or drop them here",
    dropHint: "Supported: .txt .md .pdf .docx .html .pptx .xlsx .csv .tsv .odt .ods .odp .epub, scans and images .png .jpg .tiff",
    dropActive: "Drop the files to add them",
    queueLabel: "Upload queue",
    genSummary: "Prepare the summary in the background",
    upload: "Upload",
    noFiles: "Choose one or more files first.",
    remove: (n) => `Remove ${n}`,
    fileReady: "ready to upload",
    fileSending: (p) => `uploading… ${p}%`,
    fileIndexing: "reading and indexing…",
    stage: {
      queued: "waiting for its turn…",
      reading: "reading the file…",
      ocr: (d, t) => `recognising scanned pages: ${d} of ${t}`,
      chunking: "splitting into passages…",
      embedding: (d, t) => `indexing passages: ${d} of ${t}`,
      writing: "saving…",
      done: "saving…",
    },
    fileDone: (lang, chunks, tokens) => `added: ${langName(lang)}, ${count(chunks, "passages")}, ${count(tokens, "tokens")}`,
    fileDuplicate: (lang) => `already uploaded (${langName(lang)})`,
    fileJob: "the summary is being prepared in the background",
    docsTitle: (s) => `Documents in “${s}”`,
    docsEmpty: "No documents in this space yet. Add some above.",
    docsLoading: "Loading the documents…",
    docsCount: (n) => `${count(n, "documents")}.`,
    chooseDoc: "Ask about it",
    tagsEdit: "Tags",
    tagsLabel: (f) => `Tags of ${f}, separated by commas`,
    tagsSave: "Save tags",
    tagChip: (tag) => `Show documents tagged “${tag}”`,
    tagFilter: (tag) => `Showing documents tagged “${tag}”.`,
    askScopeDocs: (n) => `Questions read only the ${count(n, "documents")} you chose.`,
    askScopeTag: (tag) => `Questions read only documents tagged “${tag}”.`,
    clearScope: "Whole space",
    refresh: "Refresh",
    language: "Language",
    size: "Size",
    summaryNone: "No summary yet",
    summaryPending: "Summary queued",
    summaryRunning: "Summary in progress",
    summaryDone: "Summary ready",
    summaryFailed: "The summary failed",
    summarize: "Summarize",
    delete: "Delete",
    retry: "Retry",
    retried: (n) => `The summary of “${n}” is queued again.`,
    confirmTitle: "Delete the document?",
    confirmText: (n) => `“${n}” will be removed together with its summaries and its search index. This cannot be undone.`,
    cancel: "Cancel",
    deleted: (n) => `“${n}” was deleted.`,
    summaryTitle: (n) => `Summary: ${n}`,
    planDirect: "Plan: one pass over the whole document.",
    planTree: (n) => `Plan: the document is read in ${count(n, "parts")}, and their summaries are then combined.`,
    planCached: "A summary written earlier is ready.",
    stageStart: "Starting…",
    stageMap: (d, t) => `Parts read: ${d} of ${t}`,
    stageReduce: (d, t) => `Combining the parts: ${d} of ${t} steps done`,
    stageWriting: "Writing the summary…",
    stageDone: "Done.",
    stageQueued: "Waiting for its turn…",
    eta: (s) => `· about ${count(s, "seconds")} left`,
    etaSoon: "· almost done",
    doneFresh: (s, calls, tps) =>
      `Written in ${num(s, 1)} s · ${count(calls, "calls")} to the model · ${num(tps, 1)} tokens/s.`,
    doneCached: (at, ms) => `From the cache: written ${when(at)}, found in ${num(ms, 0)} ms.`,
    again: "Write it again",
    close: "Close",
    progressLabel: "Progress",
    askTitle: "Ask your documents",
    question: "Question",
    mode: "Mode",
    modeAuto: "Automatic",
    modeSummarize: "Condense the passages first",
    modeDirect: "Use the passages as they are",
    topK: "Passages to use",
    ask: "Ask",
    stop: "Stop",
    askEmpty: "Type a question first.",
    askSearching: "Looking for passages…",
    askCondensing: (d, t) => `Condensing the passages: ${d} of ${t}`,
    askWriting: "Writing the answer…",
    askDone: "Answered.",
    askStopped: "Stopped.",
    askNoSources: "No passages were found in this space.",
    sources: "Sources",
    citations: "Quoted from the documents",
    notGrounded: "The documents do not answer this question: nothing is quoted.",
    answer: "Answer",
    summarizedYes: "Answered from a condensed summary of the passages",
    summarizedNo: "Answered from the passages directly",
    answerDone: (s, tokens) => `Answered in ${num(s, 1)} s · ${count(tokens, "tokens")} of context.`,
    sourceName: (f, c) => `${f}, passage ${c + 1}`,
    where: {
      page: (a, b) => (b ? `pp. ${a}–${b}` : `p. ${a}`),
      slide: (a, b) => (b ? `slides ${a}–${b}` : `slide ${a}`),
      sheet: (name) => `sheet “${name}”`,
      rows: (r) => `rows ${r.replace("-", "–")}`,
      chapter: (name) => `chapter “${name}”`,
      section: (name) => `section “${name}”`,
    },
    score: (s) => `relevance ${num(s, 3)}`,
    whereText: (loc) => whereText(loc),
    openPassage: (f, c) => `Show ${f}, passage ${c + 1}, in the document`,
    passageLoading: "Loading the document’s text…",
    passageFound: "The passage is highlighted in the document’s text.",
    passageOnly: "Showing the passage alone.",
    passageLabel: "Document text",
    convsTitle: "Conversations",
    convNew: "New conversation",
    convEmpty: "No conversations yet: your first question starts one.",
    convFresh: "A new conversation: your next question starts it.",
    convLoading: "Loading the conversation…",
    convOpen: (title) => `Open the conversation “${title}”`,
    convDelete: (title) => `Delete the conversation “${title}”`,
    convDeleted: (title) => `The conversation “${title}” was deleted.`,
    convConfirmTitle: "Delete the conversation?",
    convConfirmText: (title) => `“${title}” will be removed with all its questions and answers. This cannot be undone.`,
    convWhen: (at) => `· ${when(at)}`,
    convMore: "More conversations",
    threadEarlier: "Earlier messages",
    untitled: "Untitled",
    thread: "Conversation",
    asked: "Question",
    openQuote: (f, where) => `Show the quote in ${f}${where ? `, ${where}` : ""}`,
    quoteTitle: (f, where) => (where ? `${f}, ${where}` : f),
    quoteFound: "The quoted sentence is highlighted in the document’s text.",
    pageAlt: (n, f) => `Page ${n} of ${f}`,
    pageCaption: (n) => `The page as it is in the document: p. ${n}`,
    verdict: "Was this answer useful?",
    verdictUp: "Good answer",
    verdictDown: "Bad answer",
    verdictComment: "Comment (optional)",
    verdictSend: "Send the comment",
    verdictPick: "Choose thumbs up or down first.",
    verdictSaved: (rating) => (rating === "up" ? "Thank you: marked as a good answer." : "Thank you: marked as a bad answer."),
    healthOk: "Service ready",
    healthLimited: (list) => `Limited: ${list}`,
    healthDown: "Service unavailable",
    cap: { ingest: "uploads", search: "search", summaries: "summaries", answers: "answers" },
    capState: { degraded: "slow or partly unavailable", down: "unavailable" },
    err: {
      too_large: "The file is too large for this service.",
      markup_too_large: "The page has too much markup to be read.",
      too_many_pages: "The document has too many pages.",
      too_many_rows: "The table has too many rows.",
      too_many_ocr_pages: "The scan has more pages than can be recognised in one document.",
      image_too_large: "The image is too large (too many pixels).",
      ocr_unavailable: "This is a scan, and text recognition (Tesseract) is not installed on the server.",
      too_many_chunks: "The document is too long to index: split it into smaller ones.",
      cancelled: "The upload was stopped.",
      upload_lost: "The service restarted while reading the file: upload it again.",
      text_too_long: "The document’s text is too long.",
      unsupported_media_type: "This type of file is not supported (use .txt, .md, .pdf, .docx, .html, .pptx, .xlsx, .csv, .tsv, .odt, .ods, .odp, .epub, .png, .jpg or .tiff).",
      no_text: "No text was found in the file.",
      unreadable_document: "The file could not be read; it may be damaged.",
      encrypted_document: "The file is protected with a password.",
      too_deeply_nested: "The file nests its parts too deeply to be read.",
      invalid_input: "The request was not accepted.",
      not_found: "Not found: it may have been deleted.",
      unauthorized: "An API key is needed.",
      forbidden: "This API key cannot reach this space.",
      llm_unavailable: "The language model is not available right now. Try again in a moment.",
      context_overflow: "The text does not fit the model.",
      summarization_stalled: "The summary could not be finished.",
      cancelled: "The work was stopped.",
      vector_store_unavailable: "The search index is unavailable right now.",
      store_unavailable: "The storage is unavailable right now.",
      network: "The service could not be reached.",
      interrupted: "The connection was closed before the end.",
    },
    errStatus: (s) => `The service answered with an error (${s}).`,
    parts: { one: "part", other: "parts" },
    passages: { one: "passage", other: "passages" },
    tokens: { one: "token", other: "tokens" },
    documents: { one: "document", other: "documents" },
    seconds: { one: "second", other: "seconds" },
    calls: { one: "call", other: "calls" },
    units: ["B", "KB", "MB", "GB"],
    // signing in, the people's spaces and roles, the audit trail (auth.js)
    auth: {
      title: "Sign in",
      username: "Username",
      password: "Password",
      signIn: "Sign in",
      or: "or",
      withProvider: (name) => `Sign in with ${name}`,
      signedIn: "Signed in as",
      signOut: "Sign out",
      signedOut: "You are signed out.",
      signingIn: "Signing in…",
      fillBoth: "Enter your username and password.",
      wrong: "The username or password is wrong.",
      throttled: (s) => `Too many attempts. Try again in ${s} s.`,
      unavailable: "The sign-in service is not answering. Try again in a minute.",
      failed: "Signing in did not work. Try again.",
      expired: "Your session has ended. Sign in again to carry on.",
      expiredKept: "Your session has ended. Sign in again: the question you were typing is kept.",
      noSpaceTitle: "No space is open to you",
      noGroups: (source, name) =>
        `${{ ldap: "The directory", oidc: name, both: `The directory or ${name}` }[source]} sent no groups for you, ` +
        "so no space is open to you. Ask your administrator to add you to a group that has access.",
      noSpaces: "No space is open to you yet. Ask your administrator for access.",
      role: { reader: "reader", editor: "editor", admin: "administrator" },
      spaceOption: (space, role) => `${space} (${t(`auth.role.${role}`)})`,
      roleHint: {
        reader: "As a reader you can search, ask and read the documents here.",
        editor: "As an editor you can also add and delete documents here.",
        admin: "As an administrator you can also add and delete documents, and read this space’s audit trail.",
      },
      otherSpace: "Another space",
      audit: "Audit",
      auditLoading: "Loading the audit trail…",
      auditLatest: (space, n) => `“${space}”: the latest ${count(n, "auth.entries")}, newest first.`,
      auditEmpty: (space) => `Nothing is recorded in “${space}” yet.`,
      auditAt: "Time",
      auditAction: "Action",
      auditWho: "Person",
      auditWhat: "Document or conversation",
      auditClient: "Client",
      auditTime: (at) => whenExact(at),
      auditKey: (id) => `API key ${id}`,
      auditDoc: (id) => `document ${id}`,
      auditConv: (id) => `conversation ${id}`,
      entries: { one: "entry", other: "entries" },
      err: {
        unauthorized: "You need to sign in.",
        session_expired: "Your session has ended.",
        forbidden: "Your role in this space does not allow this.",
      },
    },
  },
  ru: {
    skip: "Перейти к содержимому",
    uiLanguage: "Язык",
    space: "Пространство",
    open: "Открыть",
    spaceHint: "Латинские буквы, цифры, _ и -, не длиннее 64. Пространство запоминается на этом компьютере.",
    spaceInvalid: "Имя пространства: от 1 до 64 латинских букв, цифр, _ или -.",
    apiKey: "Ключ API",
    saveKey: "Сохранить ключ",
    forgetKey: "Забыть ключ",
    keyNeeded: "Этому сервису нужен ключ API. Введите его, чтобы продолжить.",
    keyRejected: "Ключ API не принят. Проверьте его и попробуйте снова.",
    keyForbidden: (s) => `С этим ключом API нет доступа к пространству «${s}». Выберите другое пространство или другой ключ.`,
    keySaved: "Ключ хранится в этой вкладке, пока вы её не закроете.",
    uploadTitle: "Добавить документы",
    files: "Файлы",
    dropTitle: "Выберите файлы или перетащите их сюда",
    dropHint: "Поддерживаются: .txt .md .pdf .docx .html .pptx .xlsx .csv .tsv .odt .ods .odp .epub, сканы и изображения .png .jpg .tiff",
    dropActive: "Отпустите файлы, чтобы добавить их",
    queueLabel: "Очередь загрузки",
    genSummary: "Подготовить краткое содержание в фоне",
    upload: "Загрузить",
    noFiles: "Сначала выберите один или несколько файлов.",
    remove: (n) => `Убрать ${n}`,
    fileReady: "готов к загрузке",
    fileSending: (p) => `загрузка… ${p}%`,
    fileIndexing: "чтение и индексация…",
    stage: {
      queued: "ждёт своей очереди…",
      reading: "чтение файла…",
      ocr: (d, t) => `распознавание страниц: ${d} из ${t}`,
      chunking: "разбиение на фрагменты…",
      embedding: (d, t) => `индексация фрагментов: ${d} из ${t}`,
      writing: "сохранение…",
      done: "сохранение…",
    },
    fileDone: (lang, chunks, tokens) => `добавлен: ${langName(lang)}, ${count(chunks, "passages")}, ${count(tokens, "tokens")}`,
    fileDuplicate: (lang) => `уже загружен (${langName(lang)})`,
    fileJob: "краткое содержание готовится в фоне",
    docsTitle: (s) => `Документы в «${s}»`,
    docsEmpty: "В этом пространстве пока нет документов. Добавьте их выше.",
    docsLoading: "Загрузка списка документов…",
    docsCount: (n) => `${count(n, "documents")}.`,
    chooseDoc: "Спросить по нему",
    tagsEdit: "Метки",
    tagsLabel: (f) => `Метки документа ${f} через запятую`,
    tagsSave: "Сохранить метки",
    tagChip: (tag) => `Показать документы с меткой «${tag}»`,
    tagFilter: (tag) => `Показаны документы с меткой «${tag}».`,
    askScopeDocs: (n) => `Вопросы читают только выбранные документы: ${n}.`,
    askScopeTag: (tag) => `Вопросы читают только документы с меткой «${tag}».`,
    clearScope: "Всё пространство",
    refresh: "Обновить",
    language: "Язык",
    size: "Размер",
    summaryNone: "Краткого содержания пока нет",
    summaryPending: "Краткое содержание в очереди",
    summaryRunning: "Краткое содержание готовится",
    summaryDone: "Краткое содержание готово",
    summaryFailed: "Не удалось составить краткое содержание",
    summarize: "Краткое содержание",
    delete: "Удалить",
    retry: "Повторить",
    retried: (n) => `Краткое содержание «${n}» снова в очереди.`,
    confirmTitle: "Удалить документ?",
    confirmText: (n) => `«${n}» будет удалён вместе с его краткими содержаниями и поисковым индексом. Это нельзя отменить.`,
    cancel: "Отмена",
    deleted: (n) => `«${n}» удалён.`,
    summaryTitle: (n) => `Краткое содержание: ${n}`,
    planDirect: "План: один проход по всему документу.",
    planTree: (n) => `План: документ читается по частям (${count(n, "parts")}), затем их краткие содержания объединяются.`,
    planCached: "Краткое содержание уже было составлено.",
    stageStart: "Начинаем…",
    stageMap: (d, t) => `Прочитано частей: ${d} из ${t}`,
    stageReduce: (d, t) => `Объединение частей: готово шагов ${d} из ${t}`,
    stageWriting: "Пишу краткое содержание…",
    stageDone: "Готово.",
    stageQueued: "Ждёт своей очереди…",
    eta: (s) => `· осталось около ${count(s, "seconds")}`,
    etaSoon: "· почти готово",
    doneFresh: (s, calls, tps) =>
      `Написано за ${num(s, 1)} с · ${count(calls, "calls")} к модели · ${num(tps, 1)} токенов/с.`,
    doneCached: (at, ms) => `Из кэша: написано ${when(at)}, найдено за ${num(ms, 0)} мс.`,
    again: "Написать заново",
    close: "Закрыть",
    progressLabel: "Ход работы",
    askTitle: "Вопрос по документам",
    question: "Вопрос",
    mode: "Режим",
    modeAuto: "Автоматически",
    modeSummarize: "Сначала сжать отрывки",
    modeDirect: "Отрывки как есть",
    topK: "Сколько отрывков взять",
    ask: "Спросить",
    stop: "Остановить",
    askEmpty: "Сначала введите вопрос.",
    askSearching: "Ищу отрывки…",
    askCondensing: (d, t) => `Сжимаю отрывки: ${d} из ${t}`,
    askWriting: "Пишу ответ…",
    askDone: "Ответ готов.",
    askStopped: "Остановлено.",
    askNoSources: "В этом пространстве не нашлось подходящих отрывков.",
    sources: "Источники",
    citations: "Цитаты из документов",
    notGrounded: "В документах нет ответа на этот вопрос: цитировать нечего.",
    answer: "Ответ",
    summarizedYes: "Ответ по сжатому изложению отрывков",
    summarizedNo: "Ответ прямо по отрывкам",
    answerDone: (s, tokens) => `Ответ за ${num(s, 1)} с · контекст: ${count(tokens, "tokens")}.`,
    sourceName: (f, c) => `${f}, фрагмент ${c + 1}`,
    where: {
      page: (a, b) => (b ? `стр. ${a}–${b}` : `стр. ${a}`),
      slide: (a, b) => (b ? `слайды ${a}–${b}` : `слайд ${a}`),
      sheet: (name) => `лист «${name}»`,
      rows: (r) => `строки ${r.replace("-", "–")}`,
      chapter: (name) => `глава «${name}»`,
      section: (name) => `раздел «${name}»`,
    },
    score: (s) => `релевантность ${num(s, 3)}`,
    whereText: (loc) => whereText(loc),
    openPassage: (f, c) => `Показать ${f}, фрагмент ${c + 1}, в документе`,
    passageLoading: "Загружаю текст документа…",
    passageFound: "Отрывок выделен в тексте документа.",
    passageOnly: "Показан только отрывок.",
    passageLabel: "Текст документа",
    convsTitle: "Беседы",
    convNew: "Новая беседа",
    convEmpty: "Бесед пока нет: первый вопрос начнёт беседу.",
    convFresh: "Новая беседа: следующий вопрос её начнёт.",
    convLoading: "Загружаю беседу…",
    convOpen: (title) => `Открыть беседу «${title}»`,
    convDelete: (title) => `Удалить беседу «${title}»`,
    convDeleted: (title) => `Беседа «${title}» удалена.`,
    convConfirmTitle: "Удалить беседу?",
    convConfirmText: (title) => `Беседа «${title}» будет удалена со всеми вопросами и ответами. Это нельзя отменить.`,
    convWhen: (at) => `· ${when(at)}`,
    convMore: "Ещё беседы",
    threadEarlier: "Более ранние сообщения",
    untitled: "Без названия",
    thread: "Беседа",
    asked: "Вопрос",
    openQuote: (f, where) => `Показать цитату в ${f}${where ? `, ${where}` : ""}`,
    quoteTitle: (f, where) => (where ? `${f}, ${where}` : f),
    quoteFound: "Цитата выделена в тексте документа.",
    pageAlt: (n, f) => `Страница ${n} документа ${f}`,
    pageCaption: (n) => `Страница в документе: стр. ${n}`,
    verdict: "Полезен ли ответ?",
    verdictUp: "Хороший ответ",
    verdictDown: "Плохой ответ",
    verdictComment: "Комментарий (необязательно)",
    verdictSend: "Отправить комментарий",
    verdictPick: "Сначала выберите: палец вверх или вниз.",
    verdictSaved: (rating) => (rating === "up" ? "Спасибо: отмечен как хороший ответ." : "Спасибо: отмечен как плохой ответ."),
    healthOk: "Сервис готов",
    healthLimited: (list) => `Ограничено: ${list}`,
    healthDown: "Сервис недоступен",
    cap: { ingest: "загрузка", search: "поиск", summaries: "краткие содержания", answers: "ответы" },
    capState: { degraded: "медленно или частично", down: "недоступно" },
    err: {
      too_large: "Файл слишком большой для этого сервиса.",
      markup_too_large: "В странице слишком много разметки, её не прочитать.",
      too_many_pages: "В документе слишком много страниц.",
      too_many_rows: "В таблице слишком много строк.",
      too_many_ocr_pages: "В скане больше страниц, чем распознаётся в одном документе.",
      image_too_large: "Изображение слишком большое (слишком много пикселей).",
      ocr_unavailable: "Это скан, а распознавание текста (Tesseract) на сервере не установлено.",
      too_many_chunks: "Документ слишком длинный для индексации: разделите его на части.",
      cancelled: "Загрузка остановлена.",
      upload_lost: "Сервис перезапустился во время чтения файла: загрузите его снова.",
      text_too_long: "Текст документа слишком длинный.",
      unsupported_media_type: "Этот тип файлов не поддерживается (подойдут .txt, .md, .pdf, .docx, .html, .pptx, .xlsx, .csv, .tsv, .odt, .ods, .odp, .epub, .png, .jpg, .tiff).",
      no_text: "В файле не найден текст.",
      unreadable_document: "Файл не удалось прочитать: возможно, он повреждён.",
      encrypted_document: "Файл защищён паролем.",
      too_deeply_nested: "В файле слишком глубокая вложенность, его не прочитать.",
      invalid_input: "Запрос не принят.",
      not_found: "Не найдено: возможно, документ удалён.",
      unauthorized: "Нужен ключ API.",
      forbidden: "С этим ключом API нет доступа к этому пространству.",
      llm_unavailable: "Языковая модель сейчас недоступна. Попробуйте чуть позже.",
      context_overflow: "Текст не помещается в модель.",
      summarization_stalled: "Не удалось закончить краткое содержание.",
      cancelled: "Работа остановлена.",
      vector_store_unavailable: "Поисковый индекс сейчас недоступен.",
      store_unavailable: "Хранилище сейчас недоступно.",
      network: "Не удалось связаться с сервисом.",
      interrupted: "Соединение закрылось раньше времени.",
    },
    errStatus: (s) => `Сервис ответил ошибкой (${s}).`,
    parts: { one: "часть", few: "части", many: "частей", other: "части" },
    passages: { one: "фрагмент", few: "фрагмента", many: "фрагментов", other: "фрагмента" },
    tokens: { one: "токен", few: "токена", many: "токенов", other: "токена" },
    documents: { one: "документ", few: "документа", many: "документов", other: "документа" },
    seconds: { one: "секунда", few: "секунды", many: "секунд", other: "секунды" },
    calls: { one: "обращение", few: "обращения", many: "обращений", other: "обращения" },
    units: ["Б", "КБ", "МБ", "ГБ"],
    // вход, пространства и роли людей, журнал аудита (auth.js)
    auth: {
      title: "Вход",
      username: "Имя пользователя",
      password: "Пароль",
      signIn: "Войти",
      or: "или",
      withProvider: (name) => `Войти через ${name}`,
      signedIn: "Вы вошли как",
      signOut: "Выйти",
      signedOut: "Вы вышли.",
      signingIn: "Вход…",
      fillBoth: "Введите имя пользователя и пароль.",
      wrong: "Неверное имя пользователя или пароль.",
      throttled: (s) => `Слишком много попыток. Попробуйте снова через ${s} с.`,
      unavailable: "Служба входа не отвечает. Попробуйте через минуту.",
      failed: "Войти не удалось. Попробуйте ещё раз.",
      expired: "Сеанс завершён. Войдите снова, чтобы продолжить.",
      expiredKept: "Сеанс завершён. Войдите снова: вопрос, который вы набирали, сохранён.",
      noSpaceTitle: "Вам не открыто ни одно пространство",
      noGroups: (source, name) =>
        `От ${{ ldap: "каталога пользователей", oidc: name, both: `каталога пользователей или ${name}` }[source]} ` +
        "не пришло ни одной вашей группы, поэтому ни одно пространство вам не открыто. " +
        "Попросите администратора добавить вас в группу, у которой есть доступ.",
      noSpaces: "Вам пока не открыто ни одно пространство. Попросите доступ у администратора.",
      role: { reader: "читатель", editor: "редактор", admin: "администратор" },
      spaceOption: (space, role) => `${space} (${t(`auth.role.${role}`)})`,
      roleHint: {
        reader: "Как читатель вы можете искать, задавать вопросы и читать документы.",
        editor: "Как редактор вы можете также добавлять и удалять документы.",
        admin: "Как администратор вы можете также добавлять и удалять документы и читать журнал аудита пространства.",
      },
      otherSpace: "Другое пространство",
      audit: "Аудит",
      auditLoading: "Загрузка журнала аудита…",
      auditLatest: (space, n) => `«${space}»: последние записи (${num(n)}), новые сверху.`,
      auditEmpty: (space) => `В «${space}» пока ничего не записано.`,
      auditAt: "Время",
      auditAction: "Действие",
      auditWho: "Кто",
      auditWhat: "Документ или беседа",
      auditClient: "Клиент",
      auditTime: (at) => whenExact(at),
      auditKey: (id) => `ключ API ${id}`,
      auditDoc: (id) => `документ ${id}`,
      auditConv: (id) => `беседа ${id}`,
      entries: { one: "запись", few: "записи", many: "записей", other: "записи" },
      err: {
        unauthorized: "Нужно войти.",
        session_expired: "Сеанс завершён.",
        forbidden: "Ваша роль в этом пространстве не позволяет этого.",
      },
    },
  },
};

let lang = pickLanguage();

function pickLanguage() {
  const saved = store.get(KEYS.lang);
  if (saved && DICT[saved]) return saved;
  const wanted = navigator.languages?.length ? navigator.languages : [navigator.language || "en"];
  for (const l of wanted) {
    const base = String(l).toLowerCase().split("-")[0];
    if (DICT[base]) return base;
  }
  return "en";
}

function lookup(key) {
  let v = DICT[lang];
  let fallback = DICT.en;
  for (const part of key.split(".")) {
    v = v?.[part];
    fallback = fallback?.[part];
  }
  return v ?? fallback;
}

function t(key, ...args) {
  const v = lookup(key);
  if (typeof v === "function") return v(...args);
  return v ?? key;
}

function num(n, digits = 0) {
  return new Intl.NumberFormat(lang, { maximumFractionDigits: digits, minimumFractionDigits: 0 }).format(n);
}

function count(n, key) {
  const forms = lookup(key);
  const form = forms[new Intl.PluralRules(lang).select(n)] ?? forms.other;
  return `${num(n)} ${form}`;
}

function langName(code) {
  if (!code) return "?";
  try {
    const name = new Intl.DisplayNames([lang], { type: "language" }).of(code);
    return name && name !== code ? `${name} (${code})` : code;
  } catch {
    return code;
  }
}

function bytes(n) {
  const units = lookup("units");
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i += 1;
  }
  return `${num(n, i === 0 ? 0 : 1)} ${units[i]}`;
}

function when(epochS) {
  if (!epochS) return "";
  return new Intl.DateTimeFormat(lang, { dateStyle: "medium", timeStyle: "short" }).format(new Date(epochS * 1000));
}

// To the second: what an audit trail needs.
function whenExact(epochS) {
  if (!epochS) return "";
  return new Intl.DateTimeFormat(lang, { dateStyle: "short", timeStyle: "medium" }).format(new Date(epochS * 1000));
}

// Elements whose words depend on the page's language remember how to say them again.
const translated = new Set();

function say(el, key, ...args) {
  if (!key) {
    el.__say = null;
    el.textContent = "";
    translated.delete(el);
    return el;
  }
  el.__say = [key, args];
  el.textContent = t(key, ...args);
  translated.add(el);
  return el;
}

function sayLabel(el, key, ...args) {
  el.__sayLabel = [key, args];
  el.setAttribute("aria-label", t(key, ...args));
  translated.add(el);
  return el;
}

function applyLanguage() {
  document.documentElement.lang = lang;
  $("ui-lang").value = lang;
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of document.querySelectorAll("[data-i18n-label]")) el.setAttribute("aria-label", t(el.dataset.i18nLabel));
  for (const el of [...translated]) {
    if (!el.isConnected) {
      // removed from the page (re-rendered lists); hidden elements stay connected
      translated.delete(el);
      continue;
    }
    if (el.__say) el.textContent = t(el.__say[0], ...el.__say[1]);
    if (el.__sayLabel) el.setAttribute("aria-label", t(el.__sayLabel[0], ...el.__sayLabel[1]));
  }
  for (const item of docItems.values()) renderDoc(item);
  renderHealth();
}

// ------------------------------------------------------------------ API
const state = {
  space: store.get(KEYS.space) || "default",
  key: store.get(KEYS.key) || "",
  docs: [],
  health: null,
  role: null, // the signed-in person's role in the space; null: no people (keys only, or open)
  chosen: new Set(), // doc_ids a question is asked about (its scope); empty: the whole space
  tag: null, // the tag whose documents are shown, and read by questions when none is chosen
};

// The sign-in part (auth.js) once the service signs people in; null for a key-only or open service.
let people = null;

// What a role allows on the page; without people (state.role null) the API key decides.
const ROLE_RANK = { reader: 1, editor: 2, admin: 3 };
function may(role) {
  return !state.role || ROLE_RANK[state.role] >= ROLE_RANK[role];
}

class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message || code);
    this.status = status;
    this.code = code;
    this.details = details || {};
  }
}

function authHeaders() {
  return state.key ? { "X-API-Key": state.key } : {};
}

async function api(path, { method = "GET", json, signal, space = state.space } = {}) {
  const headers = authHeaders();
  if (json !== undefined) headers["Content-Type"] = "application/json";
  let res;
  // a request the service shed while at its most requests (503 `busy`) did nothing there: asked again
  // after its Retry-After, twice at most
  for (let attempt = 0; ; attempt++) {
    try {
      res = await fetch(path, { method, headers, signal, body: json === undefined ? undefined : JSON.stringify(json) });
    } catch (e) {
      if (e.name === "AbortError") throw e;
      throw new ApiError(0, "network", e.message);
    }
    if (res.status !== 503 || attempt >= 2 || !(await shedBusy(res))) break;
    await new Promise((done) => setTimeout(done, 1000 * Number(res.headers.get("Retry-After") || 1)));
  }
  noteAccess(res.status, space);
  if (!res.ok) throw await errorOf(res);
  return res;
}

async function shedBusy(res) {
  const env = await res.clone().json().catch(() => null);
  return env?.error?.code === "busy";
}

async function errorOf(res) {
  let env = null;
  try {
    env = (await res.json())?.error;
  } catch { /* not JSON */ }
  const fallback = { 401: "unauthorized", 403: "forbidden", 404: "not_found", 413: "too_large", 415: "unsupported_media_type" };
  return new ApiError(res.status, env?.code || fallback[res.status] || "", env?.message || "", env?.details);
}

function noteAccess(status, space) {
  if (people) {
    // a person's session ended (or idled out): back to the sign-in form, the question kept
    if (status === 401) people.expired();
    return;
  }
  if (status === 401) showKeyForm(state.key ? "keyRejected" : "keyNeeded");
  else if (status === 403) showKeyForm("keyForbidden", space);
}

// Our own words for an error, and the service's message beside them.
function showError(el, err) {
  say(el, null);
  const words = document.createElement("span");
  if (people && err.code && lookup(`auth.err.${err.code}`)) say(words, `auth.err.${err.code}`);
  else if (err.code && lookup(`err.${err.code}`)) say(words, `err.${err.code}`);
  else say(words, "errStatus", err.status);
  el.append(words);
  if (err.message && err.code !== "network") {
    const detail = document.createElement("span");
    detail.className = "detail";
    detail.textContent = ` ${err.message}`;
    el.append(detail);
  }
  el.hidden = false;
}

// Server-sent events from a fetch() body: `event:` names, `data:` lines, blank line ends one.
async function* sseEvents(body) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  let name = "";
  let data = [];
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += value;
    for (;;) {
      const i = buf.search(/[\r\n]/);
      if (i < 0 || (buf[i] === "\r" && i === buf.length - 1)) break; // a "\r" may start "\r\n"
      const line = buf.slice(0, i);
      buf = buf.slice(i + (buf.startsWith("\r\n", i) ? 2 : 1));
      if (line === "") {
        if (data.length) yield { event: name || "message", data: data.join("\n") };
        name = "";
        data = [];
      } else if (!line.startsWith(":")) {
        const c = line.indexOf(":");
        const field = c < 0 ? line : line.slice(0, c);
        let v = c < 0 ? "" : line.slice(c + 1);
        if (v.startsWith(" ")) v = v.slice(1);
        if (field === "event") name = v;
        else if (field === "data") data.push(v);
      }
    }
  }
}

async function stream(path, json, signal, onEvent) {
  const res = await api(path, { method: "POST", json, signal, space: json.space_id });
  for await (const ev of sseEvents(res.body)) {
    let data;
    try {
      data = JSON.parse(ev.data);
    } catch {
      continue;
    }
    onEvent(ev.event, data);
    if (ev.event === "complete" || ev.event === "error") return;
  }
  throw new ApiError(0, "interrupted", "");
}

// Seconds left, counted down each second from the last estimate.
class Countdown {
  constructor(el) {
    this.el = el;
    this.timer = null;
    this.deadline = 0;
  }
  set(etaS) {
    if (etaS == null || !Number.isFinite(etaS)) return;
    this.deadline = performance.now() + etaS * 1000;
    if (!this.timer) this.timer = setInterval(() => this.tick(), 1000);
    this.tick();
  }
  tick() {
    const left = Math.ceil((this.deadline - performance.now()) / 1000);
    if (left > 0) say(this.el, "eta", left);
    else say(this.el, "etaSoon");
  }
  stop() {
    clearInterval(this.timer);
    this.timer = null;
    say(this.el, null);
  }
}

// ------------------------------------------------------------------ space and key
function rememberSpace(space) {
  let spaces = [];
  try {
    spaces = JSON.parse(store.get(KEYS.spaces) || "[]");
  } catch { /* ignore */ }
  spaces = [space, ...spaces.filter((s) => s !== space && SPACE_RE.test(s))].slice(0, 12);
  store.set(KEYS.spaces, JSON.stringify(spaces));
  store.set(KEYS.space, space);
  const list = $("space-list");
  list.replaceChildren(...spaces.map((s) => Object.assign(document.createElement("option"), { value: s })));
}

let spaceChosen = false; // the reader opened a space before start-up had opened one

function openSpace(space) {
  state.space = space;
  rememberSpace(space);
  $("space").value = space;
  state.role = people ? people.roleIn(space) : null;
  $("upload-card").hidden = !may("editor");
  people?.spaceOpened(space);
  say($("docs-title"), "docsTitle", space);
  closeSummary();
  newConversation(false);
  say($("convs-status"), null);
  $("convs").replaceChildren();
  docItems.clear();
  $("docs").replaceChildren();
  state.chosen.clear();
  state.tag = null;
  renderScope();
  loadDocs();
  loadConversations();
}

function showKeyForm(messageKey, ...args) {
  const form = $("key-form");
  const wasHidden = form.hidden;
  form.hidden = false;
  say($("key-message"), messageKey, ...args);
  $("key-message").hidden = false;
  if (wasHidden || messageKey !== "keyForbidden") $("api-key").focus();
}

function setupSpaceAndKey() {
  $("space").disabled = $("space-open").disabled = false;
  $("space-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const input = $("space");
    const value = input.value.trim();
    if (!SPACE_RE.test(value)) {
      input.setAttribute("aria-invalid", "true");
      say($("space-hint"), "spaceInvalid");
      $("space-hint").classList.add("alert");
      input.focus();
      return;
    }
    input.removeAttribute("aria-invalid");
    $("space-hint").classList.remove("alert");
    say($("space-hint"), "spaceHint");
    spaceChosen = true;
    openSpace(value);
  });
  $("key-form").addEventListener("submit", (e) => {
    e.preventDefault();
    state.key = $("api-key").value.trim();
    store.set(KEYS.key, state.key || null);
    say($("key-message"), state.key ? "keySaved" : null);
    $("key-message").hidden = !state.key;
    loadDocs();
    loadConversations();
    loadHealth();
  });
  $("forget-key").addEventListener("click", () => {
    state.key = "";
    store.set(KEYS.key, null);
    $("api-key").value = "";
    $("api-key").focus();
    say($("key-message"), null);
    $("key-message").hidden = true;
  });
  if (state.key) {
    $("key-form").hidden = false;
    $("api-key").value = state.key;
    $("key-message").hidden = true;
  }
}

// ------------------------------------------------------------------ health
async function loadHealth() {
  try {
    const res = await fetch("/health");
    state.health = await res.json();
  } catch {
    state.health = { status: "down" };
  }
  renderHealth();
}

function renderHealth() {
  const el = $("health");
  const h = state.health;
  if (!h) return;
  const caps = h.capabilities || {};
  const limited = Object.entries(caps).filter(([, v]) => v !== "ok");
  el.className = "health";
  if (h.status === "down" || !h.capabilities) {
    el.textContent = t("healthDown");
    el.classList.add("bad");
  } else if (limited.length) {
    el.textContent = t("healthLimited", limited.map(([c, v]) => `${t(`cap.${c}`)} (${t(`capState.${v}`)})`).join(", "));
    el.classList.add("warn");
  } else {
    el.textContent = t("healthOk");
    el.classList.add("ok");
  }
}

// ------------------------------------------------------------------ upload
const queue = [];

function addFiles(files) {
  for (let i = queue.length - 1; i >= 0; i -= 1) {
    if (queue[i].state === "done" || queue[i].state === "error") {
      queue[i].li.remove();
      queue.splice(i, 1);
    }
  }
  for (const file of files) {
    const item = { file, state: "ready", li: document.createElement("li") };
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = file.name;
    const progress = document.createElement("progress");
    progress.max = 1;
    progress.value = 0;
    sayLabel(progress, "fileSending", 0);
    progress.hidden = true;
    const status = document.createElement("span");
    status.className = "status";
    say(status, "fileReady");
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "secondary small";
    remove.textContent = "×";
    sayLabel(remove, "remove", file.name);
    remove.addEventListener("click", () => {
      queue.splice(queue.indexOf(item), 1);
      item.li.remove();
      $("drop").focus();
    });
    Object.assign(item, { progress, status, remove });
    item.li.append(name, progress, status, remove);
    queue.push(item);
    $("queue").append(item.li);
  }
}

function sendFile(item, generateSummary) {
  return new Promise((resolve) => {
    const form = new FormData();
    form.append("file", item.file, item.file.name);
    form.append("space_id", state.space);
    form.append("generate_summary", generateSummary ? "true" : "false");
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/ingest");
    for (const [k, v] of Object.entries(authHeaders())) xhr.setRequestHeader(k, v);
    xhr.responseType = "text";
    xhr.upload.onprogress = (e) => {
      if (!e.lengthComputable) return;
      const pct = Math.round((e.loaded / e.total) * 100);
      item.progress.value = e.loaded / e.total;
      sayLabel(item.progress, "fileSending", pct);
      say(item.status, "fileSending", pct);
    };
    xhr.upload.onload = () => {
      item.progress.value = 1;
      say(item.status, "fileIndexing");
    };
    xhr.onload = () => {
      let body = null;
      try {
        body = JSON.parse(xhr.responseText);
      } catch { /* not JSON */ }
      noteAccess(xhr.status, state.space);
      if (xhr.status >= 200 && xhr.status < 300 && body) resolve({ ok: true, body });
      else resolve({ ok: false, error: new ApiError(xhr.status, body?.error?.code || "", body?.error?.message || "") });
    };
    xhr.onerror = () => resolve({ ok: false, error: new ApiError(0, "network", "") });
    xhr.send(form);
  });
}

// An upload answered 202 runs on as a job: follow it until it ends, showing its stage.
async function followUpload(item, job) {
  item.progress.hidden = false;
  for (;;) {
    const p = job.progress;
    if (p.total) {
      item.progress.max = p.total;
      item.progress.value = p.done;
    } else item.progress.removeAttribute("value");
    say(item.status, `stage.${p.stage}`, p.done, p.total);
    sayLabel(item.progress, `stage.${p.stage}`, p.done, p.total);
    if (job.status === "done") {
      const r = job.result;
      return { ok: true, body: { ...r, job_id: job.summary_job_id } };
    }
    if (job.status === "failed" || job.status === "cancelled") {
      const e = job.error || {};
      return { ok: false, error: new ApiError(422, e.code || "", e.message || "", e.details) };
    }
    await new Promise((r) => setTimeout(r, 1000));
    try {
      job = await (await api(`/jobs/${encodeURIComponent(job.job_id)}`)).json();
    } catch (err) {
      return { ok: false, error: err };
    }
  }
}

async function uploadAll() {
  const todo = queue.filter((q) => q.state === "ready" || q.state === "error");
  if (!todo.length) {
    say($("upload-status"), "noFiles");
    $("drop").focus();
    return;
  }
  const button = $("upload");
  button.disabled = true;
  const generate = $("gen-summary").checked;
  say($("upload-status"), null);
  try {
    for (const item of todo) {
      item.state = "sending";
      item.li.className = "";
      item.status.className = "status";
      item.remove.hidden = true;
      item.progress.hidden = false;
      item.progress.value = 0;
      say(item.status, "fileSending", 0);
      let result = await sendFile(item, generate);
      if (result.ok && result.body.kind === "upload") result = await followUpload(item, result.body);
      item.progress.hidden = true;
      item.progress.max = 1;
      if (result.ok) {
        const b = result.body;
        item.state = "done";
        item.li.className = "ok";
        if (b.duplicate) say(item.status, "fileDuplicate", b.language);
        else say(item.status, "fileDone", b.language, b.chunks, b.tokens);
        if (b.job_id) {
          const job = document.createElement("span");
          job.className = "status";
          say(job, "fileJob");
          item.li.append(job);
        }
        loadDocs();
      } else {
        item.state = "error";
        item.li.className = "error";
        item.remove.hidden = false;
        item.status.classList.add("alert");
        showError(item.status, result.error);
        if (result.error.status === 401 || result.error.status === 403) break;
      }
    }
  } finally {
    button.disabled = false;
  }
}

function setupUpload() {
  const input = $("files");
  const drop = $("drop");
  drop.addEventListener("click", () => input.click());
  input.addEventListener("change", () => {
    addFiles([...input.files]);
    input.value = "";
  });
  let depth = 0;
  drop.addEventListener("dragenter", (e) => {
    e.preventDefault();
    depth += 1;
    drop.classList.add("over");
  });
  drop.addEventListener("dragover", (e) => {
    e.preventDefault();
    e.dataTransfer.dropEffect = "copy";
  });
  drop.addEventListener("dragleave", () => {
    depth = Math.max(0, depth - 1);
    if (!depth) drop.classList.remove("over");
  });
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    depth = 0;
    drop.classList.remove("over");
    addFiles([...(e.dataTransfer?.files || [])]);
  });
  // a file dropped beside the zone must not replace the page
  window.addEventListener("dragover", (e) => e.preventDefault());
  window.addEventListener("drop", (e) => e.preventDefault());
  $("upload-form").addEventListener("submit", (e) => {
    e.preventDefault();
    uploadAll();
  });
}

// ------------------------------------------------------------------ documents
const docItems = new Map(); // doc_id -> {doc, li, parts…}
let pollTimer = null;
let loading = null;

async function loadDocs() {
  clearTimeout(pollTimer);
  pollTimer = null;
  const space = state.space;
  if (!docItems.size) say($("docs-status"), "docsLoading");
  const mine = Symbol("load");
  loading = mine;
  let list;
  try {
    const res = await api(`/documents?space_id=${encodeURIComponent(space)}&limit=1000`, { space });
    list = (await res.json()).documents;
  } catch (err) {
    if (loading !== mine) return;
    const status = $("docs-status");
    status.classList.add("alert");
    showError(status, err);
    if (err.status === 401 || err.status === 403) {
      docItems.clear();
      $("docs").replaceChildren();
    }
    return;
  }
  if (loading !== mine || space !== state.space) return;
  const status = $("docs-status");
  status.classList.remove("alert");
  const keyMessage = $("key-message");
  if (keyMessage.__say && keyMessage.__say[0] !== "keySaved") {
    // the key works here: the prompt has done its job (the form stays, to change the key)
    say(keyMessage, null);
    keyMessage.hidden = true;
  }
  state.docs = list;
  renderDocs();
  renderScope();
  say(status, list.length ? "docsCount" : "docsEmpty", list.length);
  if (list.some((d) => d.summary_status === "pending" || d.summary_status === "running")) {
    pollTimer = setTimeout(loadDocs, POLL_MS);
  }
}

function renderDocs() {
  const ul = $("docs");
  const seen = new Set(state.docs.map((d) => d.doc_id));
  for (const [id, item] of docItems) {
    if (!seen.has(id)) {
      item.li.remove();
      docItems.delete(id);
    }
  }
  // items are updated in place and moved only when out of order, so focus inside them stays
  state.docs.forEach((doc, i) => {
    let item = docItems.get(doc.doc_id);
    if (!item) {
      item = makeDocItem(doc);
      docItems.set(doc.doc_id, item);
    }
    item.doc = doc;
    renderDoc(item);
    if (ul.children[i] !== item.li) ul.insertBefore(item.li, ul.children[i] || null);
  });
}

function el(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text != null) e.textContent = text;
  return e;
}

function makeDocItem(doc) {
  const li = el("li", "doc");
  const name = el("h3", "name");
  const meta = el("p", "meta");
  const status = el("p", "summary-status");
  const statusText = el("span");
  const progress = el("progress");
  progress.max = 1;
  const retry = el("button", "secondary small");
  retry.type = "button";
  const actions = el("div", "row actions");
  const summarize = el("button", "primary");
  summarize.type = "button";
  const del = el("button", "danger-outline");
  del.type = "button";
  status.append(statusText, " ", progress, " ", retry);
  const tags = el("div", "row tags");
  const chooseLabel = el("label", "choose");
  const choose = el("input");
  choose.type = "checkbox";
  const chooseText = el("span");
  chooseLabel.append(choose, " ", chooseText);
  const editTags = el("button", "secondary small");
  editTags.type = "button";
  const tagForm = el("form", "row tag-form");
  tagForm.hidden = true;
  const tagInput = el("input");
  tagInput.maxLength = 2000;
  const tagSave = el("button", "secondary small");
  tagSave.type = "submit";
  tagForm.append(tagInput, tagSave);
  actions.append(summarize, chooseLabel, editTags, del);
  li.append(name, meta, tags, status, actions, tagForm);
  const item = {
    doc, li, name, meta, tags, status, statusText, progress, retry, summarize, del,
    choose, chooseText, editTags, tagForm, tagInput, tagSave,
  };
  choose.addEventListener("change", () => {
    if (choose.checked) state.chosen.add(item.doc.doc_id);
    else state.chosen.delete(item.doc.doc_id);
    renderScope();
  });
  editTags.addEventListener("click", () => {
    tagForm.hidden = !tagForm.hidden;
    editTags.setAttribute("aria-expanded", String(!tagForm.hidden));
    if (!tagForm.hidden) {
      tagInput.value = (item.doc.tags || []).join(", ");
      tagInput.focus();
    }
  });
  tagForm.addEventListener("submit", (e) => {
    e.preventDefault();
    saveTags(item);
  });
  summarize.addEventListener("click", () => openSummary(item.doc));
  del.addEventListener("click", () => confirmDelete(item.doc));
  retry.addEventListener("click", () => retryJob(item));
  return item;
}

function renderDoc(item) {
  const d = item.doc;
  item.name.textContent = d.filename;
  item.meta.replaceChildren(
    el("span", "", `${t("language")}: ${langName(d.language)}`),
    el("span", "", `${t("size")}: ${bytes(d.size_bytes)}`),
    el("span", "", count(d.chunks, "passages")),
    el("span", "", count(d.tokens, "tokens")),
  );
  const s = d.summary_status;
  const p = d.summary_progress;
  let text = t({ none: "summaryNone", pending: "summaryPending", running: "summaryRunning", done: "summaryDone", failed: "summaryFailed" }[s] || "summaryNone");
  if ((s === "pending" || s === "running") && p) {
    const step = stageWords(p.stage, p.done, p.total);
    if (step) text += `: ${step}`;
    if (p.eta_s != null && p.eta_s > 0) text += ` ${t("eta", Math.ceil(p.eta_s))}`;
  }
  item.statusText.textContent = text;
  item.status.className = `summary-status ${s}`;
  const busy = s === "pending" || s === "running";
  item.progress.hidden = !busy;
  if (busy && p && p.total > 0 && p.stage !== "queued") item.progress.value = progressOf(p.stage, p.done, p.total, p.strategy);
  else item.progress.removeAttribute("value");
  item.progress.setAttribute("aria-label", `${t("progressLabel")}: ${d.filename}`);
  item.retry.hidden = s !== "failed" || !d.summary_job_id;
  item.retry.textContent = t("retry");
  item.retry.setAttribute("aria-label", `${t("retry")}: ${d.filename}`);
  item.summarize.textContent = t("summarize");
  item.summarize.setAttribute("aria-label", `${t("summarize")}: ${d.filename}`);
  item.del.hidden = !may("editor");
  item.del.textContent = t("delete");
  item.del.setAttribute("aria-label", `${t("delete")}: ${d.filename}`);
  item.tags.replaceChildren(
    ...(d.tags || []).map((tag) => {
      const chip = el("button", "chip", tag);
      chip.type = "button";
      chip.setAttribute("aria-label", t("tagChip", tag));
      chip.setAttribute("aria-pressed", String(state.tag === tag));
      chip.addEventListener("click", () => showTag(state.tag === tag ? null : tag));
      return chip;
    }),
  );
  item.tags.hidden = !(d.tags || []).length;
  item.choose.checked = state.chosen.has(d.doc_id);
  item.chooseText.textContent = t("chooseDoc");
  item.choose.setAttribute("aria-label", `${t("chooseDoc")}: ${d.filename}`);
  item.editTags.hidden = !may("editor");
  item.editTags.textContent = t("tagsEdit");
  item.editTags.setAttribute("aria-expanded", String(!item.tagForm.hidden));
  item.tagInput.setAttribute("aria-label", t("tagsLabel", d.filename));
  item.tagSave.textContent = t("tagsSave");
  item.li.hidden = state.tag != null && !(d.tags || []).includes(state.tag);
}

// New tags for a document (PATCH /documents/{id}): comma-separated, blanks dropped.
async function saveTags(item) {
  const tags = item.tagInput.value.split(",").map((tag) => tag.trim()).filter(Boolean);
  try {
    await api(`/documents/${encodeURIComponent(item.doc.doc_id)}?${spaceQuery()}`, { method: "PATCH", json: { tags } });
    item.tagForm.hidden = true;
    await loadDocs();
  } catch (err) {
    showError($("docs-status"), err);
  }
}

// Documents of one tag (null: all), and the scope a question then reads.
function showTag(tag) {
  state.tag = tag;
  for (const item of docItems.values()) renderDoc(item);
  renderScope();
}

// Chosen documents no longer in the space leave the choice; the scope line says what a question reads.
function renderScope() {
  const present = new Set(state.docs.map((d) => d.doc_id));
  for (const id of [...state.chosen]) if (!present.has(id)) state.chosen.delete(id);
  if (state.chosen.size) say($("ask-scope-text"), "askScopeDocs", state.chosen.size);
  else if (state.tag != null) say($("ask-scope-text"), "askScopeTag", state.tag);
  $("ask-scope").hidden = !state.chosen.size && state.tag == null;
  $("tag-filter").hidden = state.tag == null;
  if (state.tag != null) say($("tag-filter-text"), "tagFilter", state.tag);
}

function clearScope() {
  state.chosen.clear();
  showTag(null);
}

// What a question reads: the chosen documents, else the shown tag, else the whole space.
function scopeFields() {
  if (state.chosen.size) return { doc_ids: [...state.chosen] };
  if (state.tag != null) return { tags: [state.tag] };
  return {};
}

function stageWords(stage, done, total) {
  if (stage === "map") return t("stageMap", done, total);
  if (stage === "reduce") return t("stageReduce", done, total);
  if (stage === "final") return t("stageWriting");
  if (stage === "queued") return t("stageQueued");
  if (stage === "start") return t("stageStart");
  return "";
}

function progressOf(stage, done, total, strategy) {
  const f = total > 0 ? done / total : 0;
  if (stage === "map") return 0.05 + 0.75 * f;
  if (stage === "reduce") return 0.8 + 0.15 * f;
  if (stage === "final") return strategy === "direct" ? 0.5 : 0.95;
  if (stage === "done") return 1;
  return 0.02;
}

async function retryJob(item) {
  const d = item.doc;
  try {
    await api(`/jobs/${encodeURIComponent(d.summary_job_id)}/retry`, { method: "POST" });
    $("docs-status").classList.remove("alert");
    say($("docs-status"), "retried", d.filename);
  } catch (err) {
    $("docs-status").classList.add("alert");
    showError($("docs-status"), err);
  }
  loadDocs();
  item.summarize.focus();
}

let pendingConfirm = null;

// Ask before anything is deleted: `action` runs only when the dialog closes with "Delete".
function confirmFirst(titleKey, textKey, name, action) {
  pendingConfirm = action;
  const dialog = $("confirm");
  say($("confirm-title"), titleKey);
  say($("confirm-text"), textKey, name);
  dialog.returnValue = "";
  dialog.showModal();
  dialog.querySelector("button[value=cancel]").focus();
}

function onConfirmClosed() {
  const action = pendingConfirm;
  pendingConfirm = null;
  if (action && $("confirm").returnValue === "delete") action();
}

function confirmDelete(doc) {
  confirmFirst("confirmTitle", "confirmText", doc.filename, () => deleteDocument(doc));
}

async function deleteDocument(doc) {
  const space = state.space;
  try {
    await api(`/documents/${encodeURIComponent(doc.doc_id)}?space_id=${encodeURIComponent(space)}`, {
      method: "DELETE",
      space,
    });
    if (summaryRun?.doc.doc_id === doc.doc_id) closeSummary();
    $("docs-status").classList.remove("alert");
    await loadDocs();
    say($("docs-status"), "deleted", doc.filename);
  } catch (err) {
    $("docs-status").classList.add("alert");
    showError($("docs-status"), err);
  }
  $("docs-title").focus();
}

function setupDocuments() {
  $("refresh").addEventListener("click", () => loadDocs());
  $("tag-filter-clear").addEventListener("click", clearScope);
  $("ask-scope-clear").addEventListener("click", clearScope);
  $("confirm").addEventListener("close", onConfirmClosed);
  $("docs-title").tabIndex = -1;
}

// ------------------------------------------------------------------ summary
let summaryRun = null;
const summaryEta = new Countdown($("summary-eta"));

function closeSummary() {
  if (summaryRun) summaryRun.controller.abort();
  summaryRun = null;
  summaryEta.stop();
  $("summary").hidden = true;
  $("summary-text").setAttribute("aria-busy", "false");
}

function openSummary(doc, force = false) {
  if (summaryRun) summaryRun.controller.abort();
  summaryEta.stop();
  const run = { doc, controller: new AbortController(), strategy: null };
  summaryRun = run;
  const panel = $("summary");
  panel.hidden = false;
  say($("summary-title"), "summaryTitle", doc.filename);
  say($("summary-plan"), null);
  say($("summary-stage"), "stageStart");
  say($("summary-done"), null);
  $("summary-error").hidden = true;
  $("summary-again").hidden = true;
  const progress = $("summary-progress");
  progress.removeAttribute("value");
  const text = $("summary-text");
  text.textContent = "";
  text.lang = doc.language || "";
  text.setAttribute("aria-busy", "true");
  panel.scrollIntoView({ block: "nearest", behavior: "smooth" });
  $("summary-title").tabIndex = -1;
  $("summary-title").focus({ preventScroll: true });

  const onEvent = (name, data) => {
    if (summaryRun !== run) return;
    if (name === "start") {
      run.strategy = data.strategy;
      if (data.cached) say($("summary-plan"), "planCached");
      else if (data.strategy === "tree") say($("summary-plan"), "planTree", data.chunks);
      else say($("summary-plan"), "planDirect");
      if (data.language) text.lang = data.language;
      if (data.strategy === "tree") progress.value = progressOf("start");
      if (!data.cached) summaryEta.set(data.eta_s);
    } else if (name === "processing") {
      progress.value = progressOf(data.stage, data.done, data.total);
      say($("summary-stage"), data.stage === "map" ? "stageMap" : "stageReduce", data.done, data.total);
      summaryEta.set(data.eta_s);
    } else if (name === "summary") {
      if (data.reset) text.textContent = "";
      if (!text.__writing) {
        text.__writing = true;
        say($("summary-stage"), "stageWriting");
        if (run.strategy === "tree") progress.value = progressOf("final", 0, 0, "tree");
      }
      text.append(data.delta);
    } else if (name === "complete") {
      showSummarySentences(text, data.summary, data.sentences || [], doc);
      progress.value = 1;
      say($("summary-stage"), "stageDone");
      summaryEta.stop();
      const timing = data.timing || {};
      if (data.cached) say($("summary-done"), "doneCached", timing.cached_at, timing.lookup_ms ?? 0);
      else say($("summary-done"), "doneFresh", timing.total_s ?? 0, data.usage?.llm_calls ?? 0, data.usage?.tokens_per_second ?? 0);
      $("summary-again").hidden = false;
    } else if (name === "error") {
      throw new ApiError(200, data.code, data.message);
    }
  };
  text.__writing = false;
  stream(
    "/summarize-stream",
    { doc_id: doc.doc_id, space_id: state.space, force },
    run.controller.signal,
    onEvent,
  )
    .catch((err) => {
      if (err.name === "AbortError" || summaryRun !== run) return;
      summaryEta.stop();
      say($("summary-stage"), null);
      progress.value = 0;
      showError($("summary-error"), err);
      $("summary-again").hidden = false;
    })
    .finally(() => {
      if (summaryRun !== run) return;
      text.setAttribute("aria-busy", "false");
      loadDocs();
    });
}

// The summary with each sentence that rests on a passage of the document as a button: pressing it
// opens the document at that passage, marked as an answer's quote is.
function showSummarySentences(box, text, sentences, doc) {
  box.replaceChildren();
  let at = 0;
  for (const s of sentences) {
    const c = s.citations?.[0];
    const found = c ? text.indexOf(s.text, at) : -1;
    if (found < 0) continue;
    box.append(text.slice(at, found));
    const sentence = el("button", "summary-sentence", s.text);
    sentence.type = "button";
    sayLabel(sentence, "openQuote", doc.filename, whereText(c.location));
    sentence.addEventListener("click", () => openQuote({ ...c, filename: doc.filename }, null));
    box.append(sentence);
    at = found + s.text.length;
  }
  box.append(text.slice(at));
}

function setupSummary() {
  $("summary-close").addEventListener("click", () => {
    const doc = summaryRun?.doc;
    closeSummary();
    const back = doc && docItems.get(doc.doc_id);
    if (back) back.summarize.focus();
  });
  $("summary-again").addEventListener("click", () => {
    if (summaryRun) openSummary(summaryRun.doc, true);
  });
}

// ------------------------------------------------------------------ ask: a conversation
// The ask box is the conversation: the first question starts one (POST /conversations), each
// follow-up continues it (the service rewrites it from the history before retrieval), and "New
// conversation" starts afresh. The turn being answered streams into #answer-box; earlier turns
// are in #thread. Both come in pages: the newest conversations, and a conversation's newest
// messages, with buttons that fetch the next page through the page's `next_cursor`.
let askRun = null;
const askEta = new Countdown($("ask-eta"));
// live: the turn #answer-box shows, once it is answered; listCursor, earlierCursor: where the
// conversation list and the open conversation's messages continue (null: nothing more)
const conv = { id: null, live: null, listCursor: null, earlierCursor: null };
const CONV_PAGE = 50; // conversations or messages a page; even, so each question stays with its answer

function stopAsk() {
  if (askRun) askRun.controller.abort();
  askRun = null;
  askEta.stop();
  $("ask").disabled = false;
  $("ask-stop").hidden = true;
  $("answer").setAttribute("aria-busy", "false");
}

function spaceQuery(space = state.space) {
  return `space_id=${encodeURIComponent(space)}`;
}

function pageQuery(space, cursor) {
  return `${spaceQuery(space)}&limit=${CONV_PAGE}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`;
}

async function conversationsPage(space, cursor) {
  return (await api(`/conversations?${pageQuery(space, cursor)}`, { space })).json();
}

function showMoreConversations(cursor) {
  conv.listCursor = cursor || null;
  $("convs-more").hidden = !conv.listCursor;
}

// A conversations read; a failure is shown in the conversations' status line (while the page still
// shows what asked for it) and gives null. With `button`, it is disabled while the read runs.
async function convRead(load, stillWanted = () => true, button = null) {
  if (button) button.disabled = true;
  try {
    return await load();
  } catch (err) {
    if (stillWanted()) {
      $("convs-status").classList.add("alert");
      showError($("convs-status"), err);
    }
    return null;
  } finally {
    if (button) button.disabled = false;
  }
}

// The first page of the space's conversations, newest first.
async function loadConversations(keepStatus = false) {
  const space = state.space;
  const page = await convRead(() => conversationsPage(space, null), () => space === state.space);
  if (!page || space !== state.space) return;
  $("convs-status").classList.remove("alert");
  const ul = $("convs");
  ul.replaceChildren(...page.conversations.map(conversationItem));
  showMoreConversations(page.next_cursor);
  if (!keepStatus) say($("convs-status"), page.conversations.length ? null : "convEmpty");
}

// The next page of older conversations, added below those listed.
async function moreConversations() {
  const space = state.space;
  const cursor = conv.listCursor;
  if (!cursor) return;
  const page = await convRead(() => conversationsPage(space, cursor), undefined, $("convs-more"));
  if (!page || space !== state.space || conv.listCursor !== cursor) return;
  $("convs").append(...page.conversations.map(conversationItem));
  showMoreConversations(page.next_cursor);
}

function conversationItem(c) {
  const li = el("li", "conv");
  const title = c.title || t("untitled");
  const open = el("button", "link", title);
  open.type = "button";
  sayLabel(open, "convOpen", title);
  if (c.conversation_id === conv.id) open.setAttribute("aria-current", "true");
  const at = el("span", "hint");
  say(at, "convWhen", c.updated_at);
  const del = el("button", "danger-outline small");
  del.type = "button";
  say(del, "delete");
  sayLabel(del, "convDelete", title);
  open.addEventListener("click", () => openConversation(c.conversation_id));
  del.addEventListener("click", () =>
    confirmFirst("convConfirmTitle", "convConfirmText", title, () => deleteConversation(c, title)),
  );
  const name = el("span", "");
  name.append(open, " ", at);
  li.append(name, del);
  return li;
}

function clearTurns() {
  stopAsk();
  conv.live = null;
  showEarlierMessages(null);
  $("thread").replaceChildren();
  $("thread").hidden = true;
  $("answer-box").hidden = true;
  say($("ask-status"), null);
  $("ask-error").hidden = true;
}

// The work of the space on the page set aside: streams stopped, polling ended (a session ended).
function stopWork() {
  closeSummary();
  stopAsk();
  clearTimeout(pollTimer);
  pollTimer = null;
  loading = null;
  passageController?.abort();
  for (const dialog of document.querySelectorAll("dialog[open]")) dialog.close();
}

// Everything of the last person's off the page (signed out, or someone else signed in).
function clearWork() {
  stopWork();
  newConversation(false);
  $("question").value = "";
  $("convs").replaceChildren();
  say($("convs-status"), null);
  state.docs = [];
  docItems.clear();
  $("docs").replaceChildren();
  say($("docs-status"), null);
  for (const item of queue.splice(0)) item.li.remove();
  say($("upload-status"), null);
}

function newConversation(focus = true) {
  clearTurns();
  conv.id = null;
  for (const b of $("convs").querySelectorAll("[aria-current]")) b.removeAttribute("aria-current");
  if (focus) {
    say($("convs-status"), "convFresh");
    $("question").focus();
  }
}

async function messagesPage(id, space, cursor) {
  return (await api(`/conversations/${encodeURIComponent(id)}?${pageQuery(space, cursor)}`, { space })).json();
}

// Stored messages as the turns #thread shows: each question with the answer after it.
function turnsOf(messages, conversationId, space) {
  const turns = [];
  for (let i = 0; i < messages.length; i += 1) {
    const m = messages[i];
    if (m.role !== "user") continue;
    const a = messages[i + 1]?.role === "assistant" ? messages[i + 1] : null;
    turns.push({
      q: m.text,
      answer: a?.text || "",
      language: a?.language || m.language || "",
      grounded: a?.grounded,
      citations: a?.citations || [],
      support: a?.support || [],
      sources: a?.sources || [],
      conversationId,
      space,
      messageId: a?.message_id || null,
      feedback: a?.feedback || null,
    });
  }
  return turns;
}

function showEarlierMessages(cursor) {
  conv.earlierCursor = cursor || null;
  $("thread-earlier").hidden = !conv.earlierCursor;
}

// The conversation's newest messages; earlier ones come with "Earlier messages".
async function openConversation(id) {
  clearTurns();
  conv.id = id;
  say($("convs-status"), "convLoading");
  const space = state.space;
  const body = await convRead(() => messagesPage(id, space, null));
  if (!body || space !== state.space || conv.id !== id) return;
  say($("convs-status"), null);
  for (const turn of turnsOf(body.messages || [], id, space)) addPastTurn(turn);
  showEarlierMessages(body.next_cursor);
  loadConversations(true); // marks the open one
  $("thread").focus();
}

// The page of messages before those shown, put above them.
async function earlierMessages() {
  const id = conv.id;
  const space = state.space;
  const cursor = conv.earlierCursor;
  if (!id || !cursor) return;
  const body = await convRead(() => messagesPage(id, space, cursor), undefined, $("thread-earlier"));
  if (!body || space !== state.space || conv.id !== id || conv.earlierCursor !== cursor) return;
  $("thread").prepend(...turnsOf(body.messages || [], id, space).map(pastTurnItem));
  $("thread").hidden = false;
  showEarlierMessages(body.next_cursor);
}

async function deleteConversation(c, title) {
  const space = state.space;
  try {
    await api(`/conversations/${encodeURIComponent(c.conversation_id)}?${spaceQuery(space)}`, { method: "DELETE", space });
  } catch (err) {
    $("convs-status").classList.add("alert");
    showError($("convs-status"), err);
    return;
  }
  if (conv.id === c.conversation_id) newConversation(false);
  await loadConversations(true);
  $("convs-status").classList.remove("alert");
  say($("convs-status"), "convDeleted", title);
  $("conv-new").focus();
}

// An answered turn, added at the end of #thread.
function addPastTurn(turn) {
  $("thread").append(pastTurnItem(turn));
  $("thread").hidden = false;
}

// An answered turn of #thread: its question, its answer and the sentences it rests on.
function pastTurnItem(turn) {
  const li = el("li", "turn");
  const q = el("p", "asked", turn.q);
  const answer = el("div", "text");
  if (turn.language) answer.lang = turn.language;
  li.append(q, answer);
  if (turn.grounded === false) li.append(say(el("p", "hint"), "notGrounded"));
  let ul = null;
  if (turn.citations.length) {
    ul = el("ul", "citations");
    sayLabel(ul, "citations");
    for (const c of turn.citations) ul.append(citationItem(c, turn.sources));
    li.append(ul);
  }
  showSupported(answer, turn.answer, turn.support || [], ul);
  if (turn.messageId) li.append(verdictBox(turn));
  return li;
}

// Thumbs up or down on an answer, with an optional comment: the reader's verdict, kept with the
// answer (a new one replaces it). The chosen thumb is pressed; the turn keeps what was saved.
function verdictBox(turn) {
  const box = el("div", "verdict");
  box.setAttribute("role", "group");
  sayLabel(box, "verdict");
  const thumb = (rating, sign, key) => {
    const b = el("button", "secondary small", sign);
    b.type = "button";
    sayLabel(b, key);
    b.addEventListener("click", () => send(rating));
    return b;
  };
  const up = thumb("up", "👍", "verdictUp");
  const down = thumb("down", "👎", "verdictDown");
  const comment = el("input", "verdict-comment");
  comment.type = "text";
  comment.maxLength = 4000;
  comment.value = turn.feedback?.comment || "";
  sayLabel(comment, "verdictComment");
  const note = el("button", "link small");
  note.type = "button";
  say(note, "verdictSend");
  note.addEventListener("click", () => send(turn.feedback?.rating));
  const status = el("span", "hint");
  status.setAttribute("role", "status");
  const show = () => {
    up.setAttribute("aria-pressed", String(turn.feedback?.rating === "up"));
    down.setAttribute("aria-pressed", String(turn.feedback?.rating === "down"));
  };
  async function send(rating) {
    if (!rating) {
      say(status, "verdictPick");
      return;
    }
    const path = `/conversations/${encodeURIComponent(turn.conversationId)}/messages/${encodeURIComponent(turn.messageId)}/feedback`;
    const json = { rating, comment: comment.value.trim() || null, space_id: turn.space };
    try {
      turn.feedback = await (await api(path, { method: "POST", json, space: turn.space })).json();
    } catch (err) {
      showError(status, err);
      return;
    }
    show();
    say(status, "verdictSaved", rating);
  }
  show();
  box.append(up, down, comment, note, status);
  return box;
}

async function askQuestion() {
  const q = $("question").value.trim();
  $("ask-error").hidden = true;
  if (!q) {
    say($("ask-status"), "askEmpty");
    $("question").focus();
    return;
  }
  stopAsk();
  const topK = Math.min(100, Math.max(1, parseInt($("top-k").value, 10) || 5));
  $("top-k").value = topK;
  const run = { controller: new AbortController() };
  askRun = run;
  const space = state.space;
  $("ask").disabled = true;
  $("ask-stop").hidden = false;
  if (conv.live) {
    addPastTurn(conv.live);
    conv.live = null;
  }
  $("answer-box").hidden = false;
  $("answer-question").textContent = q;
  $("sources").replaceChildren();
  $("citation-list").replaceChildren();
  $("citations").hidden = true;
  $("answer-kind").hidden = true;
  $("answer-verdict").replaceChildren();
  const answer = $("answer");
  answer.textContent = "";
  answer.setAttribute("aria-busy", "true");
  say($("answer-done"), null);
  say($("ask-status"), "askSearching");
  let writing = false;
  const onEvent = (name, data) => {
    if (askRun !== run) return;
    if (name === "sources") {
      renderSources(data.sources || []);
      if (data.language) answer.lang = data.language;
      if (!data.sources?.length) say($("ask-status"), "askNoSources");
    } else if (name === "processing") {
      say($("ask-status"), "askCondensing", data.done, data.total);
      askEta.set(data.eta_s);
    } else if (name === "answer") {
      if (data.reset) answer.textContent = "";
      if (!writing) {
        writing = true;
        askEta.stop();
        say($("ask-status"), "askWriting");
      }
      answer.append(data.delta);
    } else if (name === "citation") {
      addCitation(data.citation);
    } else if (name === "complete") {
      if (!$("citation-list").children.length) for (const c of data.citations || []) addCitation(c);
      showSupported(answer, data.answer, data.support || [], $("citation-list"));
      if (!$("sources").children.length && data.sources?.length) renderSources(data.sources);
      if (data.language) answer.lang = data.language;
      say($("answer-kind"), data.summarized ? "summarizedYes" : "summarizedNo");
      $("answer-kind").className = data.summarized ? "badge summarized" : "badge";
      $("answer-kind").hidden = false;
      say($("answer-done"), "answerDone", data.timing?.total_s ?? 0, data.context_tokens ?? 0);
      if (data.grounded === false && data.sources?.length) say($("answer-done"), "notGrounded");
      say($("ask-status"), "askDone");
      conv.live = {
        q,
        answer: data.answer,
        language: data.language || "",
        grounded: data.grounded,
        citations: data.citations || [],
        support: data.support || [],
        sources: data.sources || lastSources,
        conversationId: conv.id,
        space,
        messageId: data.message_id || null,
        feedback: null,
      };
      if (conv.live.messageId) $("answer-verdict").replaceChildren(verdictBox(conv.live));
      if ($("question").value.trim() === q) $("question").value = "";
    } else if (name === "error") {
      throw new ApiError(200, data.code, data.message);
    }
  };
  const body = { q, space_id: space, mode: $("mode").value, top_k: topK, ...scopeFields() };
  try {
    if (!conv.id) {
      const made = await (await api("/conversations", { method: "POST", json: { space_id: space }, signal: run.controller.signal, space })).json();
      if (askRun !== run) return;
      conv.id = made.conversation_id;
    }
    await stream(`/conversations/${encodeURIComponent(conv.id)}/messages-stream`, body, run.controller.signal, onEvent);
    if (askRun === run) loadConversations(true);
  } catch (err) {
    if (err.name === "AbortError" || askRun !== run) return;
    say($("ask-status"), null);
    showError($("ask-error"), err);
  } finally {
    if (askRun === run) {
      askRun = null;
      askEta.stop();
      $("ask").disabled = false;
      $("ask-stop").hidden = true;
      answer.setAttribute("aria-busy", "false");
    }
  }
}

// The answer with each sentence the passages bear out marked, and after it the number of the
// quote it rests on: pressing the number opens that quote's place in its document.
function showSupported(box, text, support, list) {
  box.replaceChildren();
  let at = 0;
  for (const s of support) {
    const found = s.citation == null ? -1 : text.indexOf(s.text.trim(), at);
    if (found < 0) continue;
    box.append(text.slice(at, found));
    const sentence = el("span", "supported", s.text.trim());
    const mark = el("button", "support-mark", `[${s.citation + 1}]`);
    mark.type = "button";
    mark.addEventListener("click", () => list?.children[s.citation]?.querySelector("button.link")?.click());
    box.append(sentence, mark);
    at = found + s.text.trim().length;
  }
  box.append(text.slice(at));
}

// A sentence an answer rests on, with its document and where it sits; it opens the document
// at that sentence.
let lastSources = [];
function addCitation(c) {
  $("citation-list").append(citationItem(c, lastSources));
  $("citations").hidden = false;
}

function citationItem(c, sources) {
  const li = el("li", "citation");
  const quote = el("blockquote", "", c.quote.replace(/\s+/g, " ").trim());
  const from = el("button", "link");
  from.type = "button";
  const source = sources.find((s) => s.doc_id === c.doc_id && s.chunk === c.chunk);
  const location = c.location || source?.location || null;  // the quote's own page, else its chunk's
  say(from, "sourceName", c.filename, c.chunk);
  sayLabel(from, "openQuote", c.filename, whereText(location));
  from.addEventListener("click", () => openQuote(c, source));
  const where = el("span", "where hint");
  say(where, "whereText", location);
  li.append(quote, from, where);
  return li;
}

// Where a source sits, in words: "стр. 3", "слайд 2", "лист «Продажи», строки 2–4"; "" when unknown.
function whereText(loc) {
  if (!loc) return "";
  const w = lookup("where");
  const parts = [];
  if (loc.page) parts.push(w.page(loc.page, loc.page_end));
  if (loc.slide) parts.push(w.slide(loc.slide, loc.slide_end));
  if (loc.sheet) parts.push(w.sheet(loc.sheet));
  if (loc.rows) parts.push(w.rows(loc.rows));
  if (loc.chapter) parts.push(w.chapter(loc.chapter));
  if (loc.section) parts.push(w.section(loc.section));
  return parts.join(", ");
}

function renderSources(sources) {
  lastSources = sources;
  const ol = $("sources");
  ol.replaceChildren();
  for (const s of sources) {
    const li = el("li", "source");
    const head = el("div", "row spread");
    const open = el("button", "link");
    open.type = "button";
    say(open, "sourceName", s.filename, s.chunk);
    sayLabel(open, "openPassage", s.filename, s.chunk);
    const score = el("span", "hint");
    say(score, "score", s.score);
    const where = el("span", "where hint");
    say(where, "whereText", s.match_location || s.location);  // the sentence that matched, not the chunk's start
    const title = el("span", "");
    title.append(open, where);
    head.append(title, score);
    const text = s.text.replace(/\s+/g, " ").trim();
    const excerpt = el("p", "excerpt", text.length > 280 ? `${text.slice(0, 280)}…` : text);
    li.append(head, excerpt);
    open.addEventListener("click", () => openPassage(s));
    ol.append(li);
  }
}

function escapeRe(s) {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

// Where the chunk lies in the document's text: exactly, or with the spacing changed.
function findPassage(full, chunk) {
  const exact = full.indexOf(chunk);
  if (exact >= 0) return [exact, exact + chunk.length];
  const words = chunk.trim().split(/\s+/).filter(Boolean);
  if (!words.length) return null;
  const head = new RegExp(words.slice(0, 40).map(escapeRe).join("\\s+"));
  const m = head.exec(full);
  if (!m) return null;
  const tail = new RegExp(words.slice(-20).map(escapeRe).join("\\s+"), "g");
  tail.lastIndex = m.index;
  const end = tail.exec(full);
  return [m.index, end ? end.index + end[0].length : m.index + m[0].length];
}

// Where a citation's quote lies: at its offsets when they still hold it, else found by its words.
function findQuote(full, c) {
  if (c.start != null && c.end != null && c.end > c.start && full.slice(c.start, c.end).trim()) {
    const at = full.slice(c.start, c.end);
    if (at.replace(/\s+/g, " ").trim() === c.quote.replace(/\s+/g, " ").trim()) return [c.start, c.end];
  }
  return findPassage(full, c.quote);
}

let passageController = null;

function showPassage(title, lang) {
  const dialog = $("passage");
  $("passage-title").textContent = title;
  $("passage-text").lang = lang;
  $("passage-page").hidden = true;
  $("passage-img").removeAttribute("src");
  passageController?.abort();
  passageController = new AbortController();
  if (!dialog.open) dialog.showModal();
  return passageController.signal;
}

// The document's text with [at[0], at[1]) marked and scrolled to; false when it is not found.
async function markInText(docId, at, signal) {
  const path = `/documents/${encodeURIComponent(docId)}/text?${spaceQuery()}`;
  const full = await (await api(path, { signal })).text();
  const span = at(full);
  if (!span) return false;
  const mark = el("mark", "", full.slice(span[0], span[1]));
  $("passage-text").replaceChildren(full.slice(0, span[0]), mark, full.slice(span[1]));
  mark.scrollIntoView({ block: "center" });
  return true;
}

async function openPassage(source) {
  const signal = showPassage(
    t("sourceName", source.filename, source.chunk),
    docItems.get(source.doc_id)?.doc.language || $("answer").lang || "",
  );
  $("passage-text").replaceChildren(el("mark", "", source.text));
  say($("passage-note"), "passageLoading");
  // a PDF's page beside it: the page of the sentence that matched the question, not the chunk's first
  const place = source.match_location || source.location;
  if (place?.page) showPage(source, place.page, signal);
  try {
    const found = await markInText(source.doc_id, (full) => findPassage(full, source.text), signal);
    say($("passage-note"), found ? "passageFound" : "passageOnly");
  } catch (err) {
    if (err.name !== "AbortError") say($("passage-note"), "passageOnly");
  }
}

// A citation: the document's text with the quoted sentence marked and, for a PDF page, that page.
async function openQuote(c, source) {
  const location = c.location || source?.location || null;
  const signal = showPassage(t("quoteTitle", c.filename, whereText(location)), docItems.get(c.doc_id)?.doc.language || "");
  $("passage-text").replaceChildren(el("mark", "", c.quote));
  say($("passage-note"), "passageLoading");
  if (location?.page) showPage(c, location.page, signal);
  try {
    const found = await markInText(c.doc_id, (full) => findQuote(full, c), signal);
    say($("passage-note"), found ? "quoteFound" : "passageOnly");
  } catch (err) {
    if (err.name !== "AbortError") say($("passage-note"), "passageOnly");
  }
}

// The page rendered by the service. Fetched with the key (an <img src> could not send it) and
// shown as a data: URL, which the page's security policy allows for images.
async function showPage(c, page, signal) {
  try {
    // the quote marked on the page: its offsets in the document's text, as the citation gives them
    const mark = Number.isInteger(c.start) && Number.isInteger(c.end) ? `&highlight=${c.start}-${c.end}` : "";
    const res = await api(`/documents/${encodeURIComponent(c.doc_id)}/pages/${page}?${spaceQuery()}${mark}`, { signal });
    const blob = await res.blob();
    const url = await new Promise((resolve, reject) => {
      const reader = new FileReader();
      reader.onload = () => resolve(reader.result);
      reader.onerror = () => reject(reader.error);
      reader.readAsDataURL(blob);
    });
    if (signal.aborted) return;
    const img = $("passage-img");
    img.alt = t("pageAlt", page, c.filename);
    img.src = url;
    say($("passage-page-caption"), "pageCaption", page);
    $("passage-page").hidden = false;
  } catch {
    // no picture: the highlighted text still says where the quote is
  }
}

function setupAsk() {
  $("ask-form").addEventListener("submit", (e) => {
    e.preventDefault();
    askQuestion();
  });
  $("question").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      askQuestion();
    }
  });
  $("ask-stop").addEventListener("click", () => {
    stopAsk();
    say($("ask-status"), "askStopped");
    $("question").focus();
  });
  $("conv-new").addEventListener("click", () => newConversation());
  $("convs-more").addEventListener("click", () => moreConversations());
  $("thread-earlier").addEventListener("click", () => earlierMessages());
  $("passage").addEventListener("close", () => passageController?.abort());
  $("thread").hidden = true;
}

// ------------------------------------------------------------------ start
function setupLanguage() {
  $("ui-lang").addEventListener("change", (e) => {
    lang = DICT[e.target.value] ? e.target.value : "en";
    store.set(KEYS.lang, lang);
    applyLanguage();
  });
}

// Leaving the page stops the streams: the service then cancels the model's work.
window.addEventListener("pagehide", () => {
  closeSummary();
  stopAsk();
  passageController?.abort();
});

// What the sign-in part uses of the page.
const page = {
  $,
  t,
  say,
  el,
  lookup,
  store,
  KEYS,
  SPACE_RE,
  api,
  errorOf,
  showError,
  openSpace,
  stopWork,
  clearWork,
  space: () => state.space,
  conversation: () => conv.id,
  openConversation,
  forgetKey() {
    state.key = "";
    $("key-form").hidden = true;
  },
};

setupLanguage();
setupSpaceAndKey();
setupUpload();
setupDocuments();
setupSummary();
setupAsk();
applyLanguage();
loadHealth();
setInterval(loadHealth, 60000);
// Keys only, or nothing configured: the page as it always was. With LDAP or OIDC, auth.js
// signs the person in and opens one of their spaces.
people = await People.configured(page);
if (people) people.start();
// a space the reader opened while the sign-in set-up was read stays open
else if (!spaceChosen) openSpace(SPACE_RE.test(state.space) ? state.space : "default");
