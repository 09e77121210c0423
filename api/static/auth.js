// docassist's page, the part for a service that signs people in (LDAP: a username and password
// form; OIDC: a button that goes to the provider): who is signed in, the spaces they may open and
// their role in each (the page shows only the controls that role may use), a session that ends
// while they work (back to the form, the question they were typing kept for after), and a space
// administrator's audit trail. The page's words and API helpers are app.js's, handed in as
// `page`; this file knows the /auth and /audit routes.
//
// A key-only or open service never gets here: People.configured() answers null and the page
// stays as it always was.

const RANK = { reader: 1, editor: 2, admin: 3 };
const AUDIT_LIMIT = 50;

export class People {
  /** The sign-in part when GET /auth/config says people sign in (LDAP, OIDC or both); else null. */
  static async configured(page) {
    let config;
    try {
      const res = await fetch("/auth/config");
      if (!res.ok) return null;
      config = await res.json();
    } catch {
      return null;
    }
    return config.ldap || config.oidc ? new People(page, config) : null;
  }

  constructor(page, config) {
    this.page = page;
    this.config = config;
    this.me = null; // the signed-in person (GET /auth/me's Me); null while nobody is
    this.listed = []; // with a role for every space ("*"): the spaces that hold documents
    this.auditLoad = null; // the audit read whose answer is still wanted
  }

  // Where the person's groups come from, for the words that say none came.
  get source() {
    if (this.config.ldap && this.config.oidc) return "both";
    return this.config.ldap ? "ldap" : "oidc";
  }

  get providerName() {
    return this.config.oidc_name || "OIDC";
  }

  /** Signed in already (a session cookie, or back from the provider): their spaces; else the form. */
  async start() {
    this.page.forgetKey(); // people sign in: no key field
    this.setup();
    const signInError = takeSignInError();
    let me = null;
    let unreachable = false;
    try {
      const res = await fetch("/auth/me");
      if (res.ok) me = await res.json();
      else unreachable = res.status !== 401;
    } catch {
      unreachable = true;
    }
    if (me?.user) {
      this.enter(me);
      return;
    }
    let words = null;
    if (signInError) words = this.signInErrorWords(signInError);
    else if (unreachable) words = ["auth.unavailable"];
    else if (this.readDraft()?.question?.trim()) words = ["auth.expiredKept"];
    this.showSignIn(words);
  }

  setup() {
    const { $, say } = this.page;
    $("sign-in-form").addEventListener("submit", (e) => {
      e.preventDefault();
      this.signIn();
    });
    $("sign-out").addEventListener("click", () => this.signOut());
    $("audit-refresh").addEventListener("click", () => this.loadAudit(this.page.space()));
    const oidc = $("sign-in-oidc");
    oidc.href = `/auth/oidc/login?return_to=${encodeURIComponent(location.pathname)}`;
    say(oidc, "auth.withProvider", this.providerName);
  }

  // ---------------------------------------------------------------- signed out: the form
  /** The sign-in form (and/or the provider's button) instead of the work; `alert` and `note` are
   * [word key, ...arguments] for the page's words. */
  showSignIn(alert = null, note = null) {
    const { $, say } = this.page;
    this.me = null;
    $("who").hidden = true;
    this.showWork(false);
    $("no-space").hidden = true;
    this.hideAudit();
    $("sign-in").hidden = false;
    $("sign-in-form").hidden = !this.config.ldap;
    $("sign-in-oidc").hidden = !this.config.oidc;
    $("sign-in-or").hidden = !(this.config.ldap && this.config.oidc);
    this.tell(alert);
    if (note) say($("sign-in-note"), ...note);
    else say($("sign-in-note"), null);
    if (this.config.ldap) ($("sign-in-user").value ? $("sign-in-password") : $("sign-in-user")).focus();
    else $("sign-in-oidc").focus();
  }

  tell(words) {
    const { $, say } = this.page;
    const message = $("sign-in-message");
    if (words) say(message, ...words);
    else say(message, null);
    message.hidden = !words;
  }

  async signIn() {
    const { $, say } = this.page;
    const user = $("sign-in-user");
    const password = $("sign-in-password");
    const username = user.value.trim();
    if (!username || !password.value) {
      this.tell(["auth.fillBoth"]);
      (username ? password : user).focus();
      return;
    }
    const button = $("sign-in-submit");
    button.disabled = true;
    say($("sign-in-note"), "auth.signingIn");
    let res = null;
    try {
      res = await fetch("/auth/login", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ username, password: password.value }),
      });
    } catch {
      // unreachable: said below
    } finally {
      button.disabled = false;
      say($("sign-in-note"), null);
    }
    password.value = "";
    if (res?.ok) {
      this.tell(null);
      this.enter(await res.json());
      return;
    }
    this.tell(res ? await this.refusal(res) : ["err.network"]);
    password.focus();
  }

  // Why POST /auth/login said no, in the page's words.
  async refusal(res) {
    const err = await this.page.errorOf(res);
    if (res.status === 401) return ["auth.wrong"];
    if (res.status === 429) return ["auth.throttled", retryAfter(res, err)];
    if (res.status === 503) return ["auth.unavailable"];
    if (res.status === 422) return ["auth.fillBoth"];
    if (err.code === "sign_in_failed") return ["auth.failed"];
    return ["errStatus", res.status];
  }

  // The code the OIDC callback put in `?sign_in_error=`, in words.
  signInErrorWords(code) {
    if (code === "no_groups") return ["auth.noGroups", this.source, this.providerName];
    if (code === "identity_provider_unavailable") return ["auth.unavailable"];
    return ["auth.failed"];
  }

  async signOut() {
    const { $, say, store, KEYS } = this.page;
    let res = null;
    try {
      res = await fetch("/auth/logout", { method: "POST" });
    } catch {
      // unreachable: said below
    }
    if (!res || (!res.ok && res.status !== 401)) {
      // still signed in: say so beside the button rather than show a form that is not true
      if (res) say($("who-error"), "errStatus", res.status);
      else say($("who-error"), "err.network");
      $("who-error").hidden = false;
      return;
    }
    store.set(KEYS.draft, null);
    this.page.clearWork();
    $("sign-in-user").value = "";
    this.showSignIn(null, ["auth.signedOut"]);
  }

  // ---------------------------------------------------------------- a session that ended
  /** An API call answered 401 while someone was signed in: the session ended or idled out. The
   * question being typed, the space and the conversation are kept in this tab (sessionStorage),
   * so they are back after signing in again — even through the provider's pages or a reload. */
  expired() {
    if (!this.me) return; // several calls may notice it; the first one acts
    const { $, store, KEYS } = this.page;
    const question = $("question").value;
    const draft = { user: this.me.user.id, question, space: this.page.space(), conversation: this.page.conversation() };
    store.set(KEYS.draft, JSON.stringify(draft));
    this.page.stopWork();
    this.showSignIn([question.trim() ? "auth.expiredKept" : "auth.expired"]);
  }

  readDraft() {
    const { store, KEYS } = this.page;
    try {
      const draft = JSON.parse(store.get(KEYS.draft) || "null");
      return draft && typeof draft === "object" ? draft : null;
    } catch {
      return null;
    }
  }

  // ---------------------------------------------------------------- signed in
  enter(me) {
    const { $, say, store, KEYS, SPACE_RE } = this.page;
    this.me = me;
    this.listed = [];
    $("sign-in").hidden = true;
    this.tell(null);
    say($("sign-in-note"), null);
    $("who").hidden = false;
    $("who-error").hidden = true;
    $("who-name").textContent = me.user.name || me.user.id;

    // the question kept when the session ended comes back for the same person only
    const draft = this.readDraft();
    store.set(KEYS.draft, null);
    const mine = draft && draft.user === me.user.id ? draft : null;
    if (draft && !mine) this.page.clearWork();

    if (!me.spaces.length && !me.every_space_role) {
      this.showWork(false);
      $("no-space").hidden = false;
      if (me.no_groups) say($("no-space-text"), "auth.noGroups", this.source, this.providerName);
      else say($("no-space-text"), "auth.noSpaces");
      $("no-space-title").focus();
      return;
    }
    $("no-space").hidden = true;
    this.showWork(true);
    this.placeSpacePick();
    this.fillSpaces();
    const wanted = [mine?.space, store.get(KEYS.space)].find((s) => s && SPACE_RE.test(s) && this.roleIn(s));
    this.page.openSpace(wanted || me.spaces[0]?.space_id || "default");
    if (me.every_space_role) this.listSpaces();
    if (mine) {
      $("question").value = mine.question || "";
      if (mine.conversation && mine.space === this.page.space()) this.page.openConversation(mine.conversation);
      $("question").focus();
    }
  }

  /** The person's role in `space`: their own rule's, or the one for every space, whichever is more. */
  roleIn(space) {
    if (!this.me) return null;
    const own = this.me.spaces.find((s) => s.space_id === space)?.role || null;
    const every = this.me.every_space_role || null;
    if (!own || !every) return own || every;
    return RANK[own] >= RANK[every] ? own : every;
  }

  showWork(on) {
    for (const column of document.querySelectorAll("#main > .column")) column.hidden = !on;
  }

  // The select of the person's spaces, in place of the space name to type; that field stays
  // (as "Another space") only for someone with a role in every space.
  placeSpacePick() {
    const { $, say } = this.page;
    if (!$("space-select")) {
      $("space-hint").after($("space-pick-template").content.cloneNode(true));
      say($("space-pick").querySelector("label"), "space");
      $("space-select").addEventListener("change", (e) => this.page.openSpace(e.target.value));
    }
    const typed = Boolean(this.me.every_space_role);
    $("space-form").hidden = !typed;
    $("space-hint").hidden = !typed;
    const label = $("space-form").querySelector("label[for=space]");
    label.dataset.i18n = "auth.otherSpace";
    label.textContent = this.page.t("auth.otherSpace");
  }

  fillSpaces() {
    const { $, say, el } = this.page;
    const select = $("space-select");
    const ids = [...this.me.spaces.map((s) => s.space_id)];
    for (const id of this.listed) if (!ids.includes(id)) ids.push(id);
    select.replaceChildren(
      ...ids.map((id) => {
        const option = el("option");
        option.value = id;
        return say(option, "auth.spaceOption", id, this.roleIn(id));
      }),
    );
    $("space-pick").hidden = !ids.length;
    select.value = this.page.space();
  }

  // With a role in every space, the spaces that hold documents join the list (GET /v1/models:
  // one model per space the caller reaches); without the answer, the typed field still serves.
  async listSpaces() {
    const me = this.me;
    try {
      const body = await (await this.page.api("/v1/models")).json();
      if (this.me !== me) return;
      this.listed = (body.data || []).map((m) => String(m.id)).filter((id) => id.startsWith("space:")).map((id) => id.slice(6));
      this.fillSpaces();
    } catch {
      // the list stays the person's own spaces
    }
  }

  /** app.js opened `space`: the select, the role's words and the audit trail follow it. */
  spaceOpened(space) {
    const { $, say, el } = this.page;
    if (!this.me) return;
    const select = $("space-select");
    if (select) {
      if (![...select.options].some((o) => o.value === space)) {
        const option = el("option");
        option.value = space;
        select.append(say(option, "auth.spaceOption", space, this.roleIn(space)));
        $("space-pick").hidden = false;
      }
      select.value = space;
    }
    const role = this.roleIn(space);
    if ($("space-role")) say($("space-role"), role ? `auth.roleHint.${role}` : null);
    if (role === "admin") {
      $("audit").hidden = false;
      $("audit-rows").replaceChildren();
      $("audit-table").hidden = true;
      this.loadAudit(space);
    } else this.hideAudit();
  }

  // ---------------------------------------------------------------- audit trail (admins)
  hideAudit() {
    const { $ } = this.page;
    this.auditLoad = null;
    $("audit").hidden = true;
    $("audit-rows").replaceChildren();
  }

  async loadAudit(space) {
    const { $, say, api, showError } = this.page;
    const mine = Symbol("audit");
    this.auditLoad = mine;
    const status = $("audit-status");
    status.classList.remove("alert");
    say(status, "auth.auditLoading");
    let body;
    try {
      body = await (await api(`/audit?space_id=${encodeURIComponent(space)}&limit=${AUDIT_LIMIT}`, { space })).json();
    } catch (err) {
      if (this.auditLoad !== mine) return;
      status.classList.add("alert");
      showError(status, err);
      return;
    }
    if (this.auditLoad !== mine) return;
    const entries = body.entries || [];
    $("audit-rows").replaceChildren(...entries.map((e) => this.auditRow(e)));
    $("audit-table").hidden = !entries.length;
    say(status, entries.length ? "auth.auditLatest" : "auth.auditEmpty", space, entries.length);
  }

  // One entry: when, what, who (a person, else an API key), on which document or conversation, from where.
  auditRow(entry) {
    const { say, el } = this.page;
    const at = el("time");
    at.dateTime = new Date(entry.at * 1000).toISOString();
    say(at, "auth.auditTime", entry.at);
    const time = el("td");
    time.append(at);
    const who = el("td");
    if (entry.user_name || entry.user_id) who.textContent = entry.user_name || entry.user_id;
    else if (entry.key_id) say(who, "auth.auditKey", entry.key_id);
    else who.textContent = "—";
    const what = el("td");
    const id = entry.doc_id || entry.conversation_id;
    if (id) {
      say(what, entry.doc_id ? "auth.auditDoc" : "auth.auditConv", shortId(id));
      what.title = id;
    } else what.textContent = "—";
    const row = el("tr");
    row.append(time, el("td", "", entry.action), who, what, el("td", "client", entry.client || "—"));
    return row;
  }
}

// `?sign_in_error=<code>` that the OIDC callback's redirect carries: read once, then taken out
// of the address so a reload or a bookmark does not show it again.
function takeSignInError() {
  const url = new URL(location.href);
  if (!url.searchParams.has("sign_in_error")) return null;
  const code = url.searchParams.get("sign_in_error") || "sign_in_failed";
  url.searchParams.delete("sign_in_error");
  history.replaceState(history.state, "", url.pathname + url.search + url.hash);
  return code;
}

// An id as long as a person needs to tell it from others (the whole of it in the cell's title).
function shortId(id) {
  return id.length > 12 ? `${id.slice(0, 12)}…` : id;
}

// Seconds to wait, as the service said: Retry-After, else the error's details, else a minute.
function retryAfter(res, err) {
  const header = Number.parseInt(res.headers.get("Retry-After") || "", 10);
  if (Number.isFinite(header) && header > 0) return header;
  const detail = Math.ceil(Number(err.details?.retry_after_s));
  return Number.isFinite(detail) && detail > 0 ? detail : 60;
}
