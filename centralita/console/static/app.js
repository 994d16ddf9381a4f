// Centralita's console: sign-in, the agent's desk, the supervisor's wall and reports.
// Plain ES module, no build step.  Every text the page shows from the server goes through
// textContent (never innerHTML), so a customer's message cannot become markup.
import { t, lang, setLang, duration, clock } from "/console/static/i18n.js";

const state = {
  session: null, // GET /api/auth/session
  csrf: null,
  me: null, // GET /api/me
  offers: new Map(), // offer_id → offer frame
  conversations: [], // my open conversations
  unread: new Map(), // conversation_id → count
  current: null, // conversation id on screen
  detail: null, // GET /api/conversations/{id}
  options: null, // GET /api/conversations/{id}/options
  socket: null,
  live: false,
  retry: 0,
  stats: null,
  alerts: [], // the wall's alert feed, newest first
  panel: null, // the customer panel: { conversation, customer, routing }
  panelOpen: !window.matchMedia("(max-width: 760px)").matches,
  windowWarnings: new Map(), // conversation_id → closes_at (window_warning frames)
};

// ------------------------------------------------------------------------------ helpers

class ApiError extends Error {
  constructor(status, error, headers) {
    super(error?.message || `HTTP ${status}`);
    this.status = status;
    this.error = error || {};
    this.headers = headers;
  }
}

async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && state.csrf) headers["X-CSRF-Token"] = state.csrf;
  const response = await fetch(path, {
    method,
    headers,
    credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, data?.error, response.headers);
  return data;
}

function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (value === true) node.setAttribute(key, "");
    else node.setAttribute(key, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

let toastTimer = null;
function toast(text, kind = "error") {
  const box = document.getElementById("toast");
  box.textContent = text;
  box.className = `show ${kind}`;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => (box.className = ""), 6000);
}

function explain(error) {
  if (!(error instanceof ApiError)) return t("error_generic");
  if (error.status === 401 && error.error.field === "password") return t("wrong_password");
  if (error.status === 401 && error.error.field === "invitation") {
    const why = /used/.test(error.message) ? "used" : /expired/.test(error.message) ? "expired" : "unknown";
    return t(`invitation_${why}`);
  }
  if (error.status === 401) return t("unauthenticated");
  if (error.status === 400 && error.error.field === "workspace" && error.error.details?.workspaces) {
    return t("choose_workspace", { list: error.error.details.workspaces.join(", ") });
  }
  if (error.status === 429) return t("too_many", { s: error.headers?.get("Retry-After") || "60" });
  return error.message; // the API names the field and says what is wrong
}

async function attempt(work, { quiet = false } = {}) {
  try {
    return await work();
  } catch (error) {
    if (error instanceof ApiError && error.status === 401 && error.error.field !== "password" && error.error.field !== "invitation") {
      state.session = null;
      render();
    }
    if (!quiet) toast(explain(error));
    return undefined;
  }
}

function field(label, input, hint) {
  const id = input.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  input.id = id;
  return h("div", { class: "field" }, h("label", { for: id }, label), input, hint ? h("small", {}, hint) : null);
}

function secondsUntil(iso) {
  return (new Date(iso).getTime() - Date.now()) / 1000;
}

// ------------------------------------------------------------------------------ the shell

function header(extra) {
  return h(
    "header",
    { class: "bar" },
    h("strong", { class: "brand" }, "Centralita"),
    extra,
    h("span", { class: "grow" }),
    h("button", { type: "button", class: "link", id: "lang", onclick: () => { setLang(lang === "es" ? "en" : "es"); render(); } }, t("language")),
    state.session
      ? h("button", { type: "button", class: "link", id: "signout", onclick: signOut }, t("signout"))
      : null,
  );
}

async function signOut() {
  await attempt(() => api("POST", "/api/auth/sign-out"), { quiet: true });
  if (state.socket) state.socket.close();
  state.session = null;
  state.csrf = null;
  render();
}

function render() {
  document.documentElement.lang = lang;
  document.querySelector(".skip").textContent = t("skip");
  const app = document.getElementById("app");
  app.replaceChildren();
  if (!state.session) {
    app.append(location.pathname.endsWith("/invitation") ? invitationView() : signInView());
  } else if (state.session.role === "agent") {
    app.append(deskView());
    renderLive();
    renderOffers();
    renderList();
    renderConversation();
  } else if (currentView() === "reports") {
    app.append(reportsView());
  } else {
    app.append(wallView());
  }
}

// ------------------------------------------------------------------------------ sign-in

function signInView() {
  const email = h("input", { type: "email", name: "email", autocomplete: "username", required: true });
  const password = h("input", { type: "password", name: "password", autocomplete: "current-password", required: true });
  const workspace = h("input", { type: "text", name: "workspace", autocomplete: "organization" });
  const form = h(
    "form",
    {
      class: "card narrow",
      onsubmit: async (event) => {
        event.preventDefault();
        const body = { email: email.value.trim(), password: password.value };
        if (workspace.value.trim()) body.workspace = workspace.value.trim();
        const session = await attempt(() => api("POST", "/api/auth/sign-in", body));
        if (session) await start(session);
      },
    },
    h("h1", {}, t("signin_title")),
    h("p", {}, t("signin_lead")),
    field(t("email"), email),
    field(t("password"), password),
    field(t("workspace"), workspace),
    h("button", { type: "submit", class: "primary" }, t("signin")),
  );
  return h("div", {}, header(), h("main", { id: "main", class: "center" }, form));
}

function invitationView() {
  const secret = location.hash.slice(1);
  const password = h("input", { type: "password", autocomplete: "new-password", minlength: 10, required: true });
  const again = h("input", { type: "password", autocomplete: "new-password", minlength: 10, required: true });
  const form = h(
    "form",
    {
      class: "card narrow",
      onsubmit: async (event) => {
        event.preventDefault();
        if (password.value !== again.value) return toast(t("passwords_differ"));
        const session = await attempt(() => api("POST", "/api/auth/invitation", { invitation: secret, password: password.value }));
        if (session) {
          history.replaceState(null, "", "/console/"); // the secret leaves the address bar
          await start(session);
        }
      },
    },
    h("h1", {}, t("invitation_title")),
    secret ? h("p", {}, t("invitation_lead")) : h("p", { class: "warn" }, t("invitation_missing")),
    field(t("new_password"), password),
    field(t("repeat_password"), again),
    h("button", { type: "submit", class: "primary", disabled: !secret }, t("set_password")),
  );
  return h("div", {}, header(), h("main", { id: "main", class: "center" }, form));
}

async function start(session) {
  state.session = session;
  state.csrf = session.csrf_token;
  if (session.role === "agent") {
    state.me = await attempt(() => api("GET", "/api/me"), { quiet: true });
    await loadConversations();
    connect();
  } else {
    connectWall();
  }
  render();
}

// ------------------------------------------------------------------------------ the desk: live

// One live socket per page (the desk's or the wall's): "● En vivo" while open; after a drop it
// reconnects, backing off up to 10 s; a refused session (4401) goes back to the sign-in.
function openSocket(path, onOpen, onMessage, again) {
  if (state.socket && state.socket.readyState <= 1) return;
  const socket = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}${path}`);
  state.socket = socket;
  socket.addEventListener("open", async () => {
    state.live = true;
    state.retry = 0;
    await onOpen();
    renderLive();
  });
  socket.addEventListener("message", (event) => onMessage(JSON.parse(event.data)));
  socket.addEventListener("close", (event) => {
    state.live = false;
    renderLive();
    if (!state.session || event.code === 4401) {
      if (event.code === 4401) { state.session = null; render(); toast(t("unauthenticated")); }
      return;
    }
    setTimeout(again, Math.min(10000, 500 * 2 ** state.retry++));
  });
}

function connect() {
  openSocket("/ws/agent", async () => {
    // Back after a drop: the database holds every message; read what we may have missed.
    await loadConversations();
    if (state.current) await openConversation(state.current, { keepScroll: true });
  }, onFrame, connect);
}

function send(frame) {
  if (state.socket?.readyState === WebSocket.OPEN) state.socket.send(JSON.stringify(frame));
}

setInterval(() => send({ type: "ping" }), 25000);

async function onFrame(frame) {
  switch (frame.type) {
    case "offer":
      state.offers.set(frame.offer_id, frame);
      renderOffers();
      break;
    case "offer_withdrawn":
      state.offers.delete(frame.offer_id);
      renderOffers();
      break;
    case "assigned":
      for (const [id, offer] of state.offers) if (offer.conversation_id === frame.conversation_id) state.offers.delete(id);
      renderOffers();
      await loadConversations();
      if (!state.current) await openConversation(frame.conversation_id);
      renderList();
      break;
    case "unassigned":
      await loadConversations();
      if (state.current === frame.conversation_id) { state.current = null; state.detail = null; renderConversation(); }
      renderList();
      break;
    case "message":
      if (frame.conversation_id === state.current) {
        await openConversation(frame.conversation_id, { keepScroll: false });
      } else {
        state.unread.set(frame.conversation_id, (state.unread.get(frame.conversation_id) || 0) + 1);
        await loadConversations();
        renderList();
      }
      break;
    case "message_status":
      if (frame.conversation_id === state.current && state.detail) {
        const entry = state.detail.timeline.find((e) => e.id === frame.message_id);
        if (entry) {
          entry.delivery_state = frame.delivery_state;
          entry.delivery_error = frame.errors?.[0] || null;
          renderTimeline();
        } else {
          await openConversation(frame.conversation_id, { keepScroll: true });
        }
      }
      break;
    case "window_warning":
      onWindowWarning(frame);
      break;
    case "window_closed":
      await onWindowClosed(frame);
      break;
    case "error":
      toast(frame.error.message);
      break;
    default:
      break;
  }
}

async function loadConversations() {
  const page = await attempt(() => api("GET", "/api/conversations?status=assigned&limit=100"), { quiet: true });
  if (page) state.conversations = page.items;
}

async function openConversation(id, { keepScroll = false } = {}) {
  const [detail, options] = await Promise.all([
    attempt(() => api("GET", `/api/conversations/${id}?limit=100`)),
    state.options && state.current === id ? Promise.resolve(state.options) : attempt(() => api("GET", `/api/conversations/${id}/options`), { quiet: true }),
  ]);
  if (!detail) return;
  const switched = state.current !== id;
  state.current = id;
  state.detail = detail;
  state.options = options || { dispositions: [], templates: [], queues: [] };
  state.unread.delete(id);
  const listed = state.conversations.findIndex((c) => c.id === id);
  if (listed >= 0) { const { timeline, next_cursor, ...fresh } = detail; state.conversations[listed] = fresh; }
  renderList();
  if (switched || !document.getElementById("conversation")?.dataset.id) renderConversation();
  else {
    renderTimeline(keepScroll);
    // What the agent is typing stays: the composer is rebuilt only when the window opens or closes.
    if (document.getElementById("composer")?.dataset.open !== String(windowOpen(detail))) renderComposer();
  }
}

// ------------------------------------------------------------------------------ the desk: views

function deskView() {
  const presence = h(
    "select",
    { id: "presence", "aria-label": t("presence"), onchange: (e) => send({ type: "presence", presence: e.target.value }) },
    ["available", "away", "offline"].map((p) => h("option", { value: p, selected: state.me?.agent?.presence === p }, t(p))),
  );
  const who = h("span", { class: "who" }, state.session.agent?.name || "");
  const live = h("span", { id: "live", class: "live", role: "status" });
  return h(
    "div",
    { class: "desk" },
    header([who, h("label", { class: "inline" }, h("span", { class: "sr" }, t("presence")), presence), live]),
    h(
      "main",
      { id: "main", class: "columns" },
      h(
        "aside",
        { class: "side", "aria-label": t("my_conversations") },
        h("section", { id: "offers", "aria-labelledby": "offers-h" }),
        h("section", { id: "list", "aria-labelledby": "list-h" }),
        h("p", { class: "hint" }, t("shortcuts"), " ", h("button", { type: "button", class: "link-dark", id: "shortcuts-help", onclick: openShortcuts }, t("shortcuts_more"))),
      ),
      h("section", { id: "conversation", class: "conversation" }),
    ),
  );
}

function renderLive() {
  const live = document.getElementById("live");
  if (!live) return;
  live.textContent = state.live ? `● ${t("live")}` : `○ ${t("reconnecting")}`;
  live.className = state.live ? "live on" : "live off";
}

function renderOffers() {
  const box = document.getElementById("offers");
  if (!box) return;
  const items = [...state.offers.values()].filter((o) => secondsUntil(o.expires_at) > 0);
  box.replaceChildren(
    h("h2", { id: "offers-h" }, t("offers")),
    items.length === 0
      ? h("p", { class: "muted" }, t("no_offers"))
      : h(
          "ul",
          { class: "offers" },
          items.map((offer) =>
            h(
              "li",
              { class: "offer", dataset: { offer: offer.offer_id } },
              h("div", { class: "offer-head" },
                h("strong", {}, offer.preview.customer_name || t("unknown_customer")),
                h("span", { class: `chip ${offer.channel}` }, offer.channel),
              ),
              h("div", { class: "muted" }, t("offer_for", { queue: offer.preview.queue || "—" })),
              offer.preview.text ? h("q", { class: "preview" }, offer.preview.text) : null,
              offer.preview.attachments?.length ? h("div", { class: "muted" }, t("attachment", { kind: offer.preview.attachments.map((k) => t(`kind_${k}`)).join(", ") })) : null,
              h("div", { class: "countdown", dataset: { deadline: offer.expires_at, kind: "offer" } }, t("expires_in", { s: Math.ceil(secondsUntil(offer.expires_at)) })),
              h("div", { class: "actions" },
                h("button", { type: "button", class: "primary", onclick: () => answer(offer, true) }, t("accept")),
                h("button", { type: "button", onclick: () => answer(offer, false) }, t("decline")),
              ),
            ),
          ),
        ),
  );
}

function answer(offer, accepted) {
  send({ type: "offer_answer", offer_id: offer.offer_id, accepted });
  state.offers.delete(offer.offer_id);
  renderOffers();
}

function renderList() {
  const box = document.getElementById("list");
  if (!box) return;
  box.replaceChildren(
    h("h2", { id: "list-h" }, t("my_conversations")),
    state.conversations.length === 0
      ? h("p", { class: "muted" }, t("no_conversations"))
      : h(
          "ul",
          { class: "conversations" },
          state.conversations.map((c) => {
            const unread = state.unread.get(c.id) || 0;
            const closes = c.window?.always_open ? null : c.window?.closes_at;
            return h(
              "li",
              {},
              h(
                "button",
                {
                  type: "button",
                  class: `conv ${c.id === state.current ? "current" : ""}`,
                  "aria-current": c.id === state.current ? "true" : null,
                  dataset: { conversation: c.id },
                  onclick: () => openConversation(c.id),
                },
                h("span", { class: "conv-name" }, c.customer.name || t("unknown_customer")),
                h("span", { class: `chip ${c.channel}` }, c.channel),
                unread ? h("span", { class: "badge", "aria-label": t("unread", { n: unread }) }, String(unread)) : null,
                h("span", { class: "muted small" },
                  c.enqueued_at ? t("waiting", { t: duration((Date.now() - new Date(c.enqueued_at)) / 1000) }) : "",
                  " · ",
                  closes ? h("span", { dataset: { deadline: closes, kind: "window" } }, windowText(closes)) : c.window?.always_open ? "" : t("window_closed"),
                ),
              ),
            );
          }),
        ),
  );
}

function windowText(closes) {
  const left = secondsUntil(closes);
  return left > 0 ? t("window_left", { t: duration(left) }) : t("window_closed");
}

function renderConversation() {
  const box = document.getElementById("conversation");
  if (!box) return;
  const detail = state.detail;
  if (!detail) {
    box.dataset.id = "";
    box.replaceChildren(h("p", { class: "empty" }, t("pick_conversation")));
    return;
  }
  box.dataset.id = detail.id;
  box.replaceChildren(
    h("div", { class: "conv-head" },
      h("h2", {}, detail.customer.name || t("unknown_customer")),
      h("span", { class: `chip ${detail.channel}` }, detail.channel),
      detail.queue ? h("span", { class: "muted" }, `${t("queue")}: ${detail.queue.name}`) : null,
      h("p", { id: "window-banner", class: "warn banner", role: "status", hidden: true }),
    ),
    h("ol", { id: "timeline", class: "timeline", "aria-live": "polite" }),
    h("div", { id: "composer", class: "composer" }),
    h("div", { class: "wrap" }, customerPanel(), closeForm(), transferForm()),
  );
  renderWindowBanner();
  renderTimeline();
  renderComposer();
  loadPanel(detail.id);
}

// ------------------------------------------------------------------------------ the desk: window warnings

function onWindowWarning(frame) {
  state.windowWarnings.set(frame.conversation_id, frame.closes_at);
  renderWindowBanner();
  renderList();
}

async function onWindowClosed(frame) {
  state.windowWarnings.delete(frame.conversation_id);
  if (frame.conversation_id !== state.current) return;
  state.options = null; // ask again what may go out now (the approved templates)
  await openConversation(frame.conversation_id, { keepScroll: true });
  renderWindowBanner();
}

// The banner over the open conversation while its reply window is about to close.
function renderWindowBanner() {
  const banner = document.getElementById("window-banner");
  if (!banner) return;
  const closes = state.windowWarnings.get(state.current);
  const left = closes ? secondsUntil(closes) : 0;
  if (left <= 0 || !state.detail || state.detail.status === "closed") {
    banner.hidden = true;
    banner.textContent = "";
    return;
  }
  const after = state.detail.window?.templates_allowed === false ? "window_warning_after_text" : "window_warning_after_templates";
  const minutes = left < 7200 ? `${Math.max(1, Math.ceil(left / 60))} min` : duration(left);
  banner.textContent = t("window_warning", { t: minutes, after: t(after) });
  banner.hidden = false;
}

setInterval(renderWindowBanner, 15000);

const TICKS = { queued: "🕓", sending: "🕓", unknown: "?", sent: "✓", delivered: "✓✓", read: "✓✓", failed: "⚠" };

function attachmentView(a) {
  const label = a.caption || a.filename || t(`kind_${a.kind}`);
  const media = a.media;
  if (a.kind === "location" && a.data) {
    const where = [a.data.name, a.data.address].filter(Boolean).join(" · ");
    return h("div", { class: "att location" }, `📍 ${where || ""} (${a.data.latitude}, ${a.data.longitude})`);
  }
  if (a.kind === "contacts" && a.data) {
    return h("div", { class: "att contacts" }, `👤 ${JSON.stringify(a.data).slice(0, 200)}`);
  }
  if (!media) return h("div", { class: "att muted" }, t("attachment", { kind: t(`kind_${a.kind}`) }));
  if (media.status === "pending") return h("div", { class: "att muted", dataset: { pending: "1" } }, t("media_pending", { kind: t(`kind_${a.kind}`) }));
  if (media.status !== "stored") return h("div", { class: "att warn" }, t("media_failed", { why: media.error || media.status }));
  const type = media.mime_type || "";
  let shown;
  if (type.startsWith("image/")) shown = h("img", { src: media.url, alt: label, loading: "lazy", class: "att-img" });
  else if (type.startsWith("audio/")) shown = h("audio", { src: media.url, controls: true, preload: "none", "aria-label": label });
  else if (type.startsWith("video/")) shown = h("video", { src: media.url, controls: true, preload: "none", class: "att-video", "aria-label": label });
  else shown = h("a", { href: media.url, download: a.filename || "", class: "att-doc" }, `📄 ${label}`);
  return h("figure", { class: "att" }, shown, a.caption ? h("figcaption", {}, a.caption) : null);
}

function entryBody(entry) {
  if (entry.kind === "deleted") return h("em", {}, t("deleted"));
  if (entry.kind === "reaction") return t("reaction", { emoji: entry.text || "" });
  const captions = new Set((entry.attachments || []).map((a) => a.caption).filter(Boolean));
  return [
    ...(entry.attachments || []).map(attachmentView),
    entry.text && !captions.has(entry.text) ? h("span", {}, entry.text) : null,
  ];
}

let mediaPoll = null;

function renderTimeline(keepScroll = false) {
  const list = document.getElementById("timeline");
  if (!list || !state.detail) return;
  const nearBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 80;
  const edits = latestEdits(state.detail.timeline);
  list.replaceChildren(
    ...state.detail.timeline.filter(shownInTimeline).map((entry) =>
      h(
        "li",
        { class: `entry ${entry.direction} ${entry.kind}${entry.deleted ? " was-deleted" : ""}`, dataset: { message: entry.id } },
        entry.direction === "note" ? h("span", { class: "tag" }, t("note_tag")) : null,
        h("div", { class: "text" }, timelineBody(entry, edits)),
        h(
          "div",
          { class: "meta" },
          h("time", { datetime: entry.at }, clock(entry.at)),
          " ",
          entry.channel,
          entryMarkers(entry),
          entry.direction === "out" && entry.delivery_state
            ? h("span", { class: `tick ${entry.delivery_state}`, title: t(entry.delivery_state), dataset: { state: entry.delivery_state } },
                ` ${TICKS[entry.delivery_state] || ""} ${t(entry.delivery_state)}`,
                entry.delivery_error?.title ? ` — ${entry.delivery_error.title}` : "")
            : null,
        ),
      ),
    ),
  );
  if (!keepScroll || nearBottom) list.scrollTop = list.scrollHeight;
  // Media still being fetched from the provider: read the conversation again shortly.
  clearTimeout(mediaPoll);
  if (list.querySelector("[data-pending]")) {
    const id = state.current;
    mediaPoll = setTimeout(() => { if (state.current === id) openConversation(id, { keepScroll: true }); }, 1000);
  }
}

function windowOpen(detail) {
  return Boolean(detail.window?.always_open || detail.window?.open);
}

function renderComposer() {
  const box = document.getElementById("composer");
  if (!box || !state.detail) return;
  const detail = state.detail;
  box.dataset.open = String(windowOpen(detail));
  if (detail.status === "closed") return box.replaceChildren();
  const note = h("button", { type: "button", id: "add-note", onclick: () => postNote(text) }, t("add_note"));
  let text = null;
  if (windowOpen(detail)) {
    text = h("textarea", { id: "reply", rows: 3, placeholder: t("write_reply"), "aria-label": t("composer") });
    text.addEventListener("keydown", (e) => { if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); reply(text); } });
    box.replaceChildren(
      field(t("composer"), text),
      attachPicker(),
      h("div", { class: "actions" }, h("button", { type: "button", class: "primary", id: "send", onclick: () => reply(text) }, t("send")), note),
    );
    return;
  }
  const templates = state.options?.templates || [];
  const params = h("div", { class: "params" });
  const picker = h(
    "select",
    { id: "template", onchange: () => showParams() },
    h("option", { value: "" }, t("choose_template")),
    templates.map((tpl, i) => h("option", { value: String(i) }, `${tpl.name} (${tpl.language})`)),
  );
  function showParams() {
    const tpl = templates[Number(picker.value)];
    params.replaceChildren(
      ...(tpl && picker.value !== "" ? tpl.parameters : []).map((name) =>
        field(t("parameter", { name }), h("input", { type: "text", name, required: true })),
      ),
      tpl?.body ? h("p", { class: "muted" }, tpl.body) : "",
    );
  }
  text = h("textarea", { id: "reply", rows: 2, "aria-label": t("note") });
  box.replaceChildren(
    h("p", { class: "warn", id: "window-closed" }, t("window_closed_templates")),
    templates.length ? field(t("template"), picker) : h("p", { class: "muted" }, t("no_templates")),
    params,
    h("div", { class: "actions" },
      h("button", {
        type: "button", class: "primary", id: "send-template", disabled: !templates.length,
        onclick: async () => {
          const tpl = templates[Number(picker.value)];
          if (!tpl || picker.value === "") return toast(t("choose_template"));
          const values = [...params.querySelectorAll("input")].map((i) => i.value);
          await sendReply({ template: { name: tpl.name, language: tpl.language, parameters: values } });
        },
      }, t("send_template")),
    ),
    field(t("note"), text),
    h("div", { class: "actions" }, note),
  );
}

async function sendReply(body) {
  const sent = await attempt(() => api("POST", `/api/conversations/${state.current}/messages`, body));
  if (sent) await openConversation(state.current);
  return sent;
}

async function reply(text) {
  const value = text.value.trim();
  if (!value && !attached.file) return;
  text.disabled = true;
  const sent = attached.file ? await sendWithAttachment(value) : await sendReply({ text: value });
  text.disabled = false;
  if (sent) { const again = document.getElementById("reply"); if (again) { again.value = ""; again.focus(); } }
}

// ------------------------------------------------------------------------------ composer attachments
// One file per reply: chosen with a real <input type=file>, shown (name, size, a thumbnail for an
// image) and removable until sent; sending uploads it (POST …/attachments) and names it in the
// reply.  The API's 413/415/400 are shown beside the file, in the page's language.

const attached = { file: null, preview: null, conversation: null };

function forgetAttachment() {
  if (attached.preview) URL.revokeObjectURL(attached.preview);
  attached.file = null;
  attached.preview = null;
  attached.conversation = null;
}

function fileSize(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
}

function attachPicker() {
  if (attached.conversation !== state.current) forgetAttachment();
  const input = h("input", { type: "file", id: "attach", class: "attach-input", "aria-describedby": "attach-hint" });
  input.addEventListener("change", () => {
    forgetAttachment();
    const file = input.files?.[0];
    if (file) {
      attached.file = file;
      attached.conversation = state.current;
      if (file.type.startsWith("image/")) attached.preview = URL.createObjectURL(file);
    }
    renderChosenFile();
  });
  return h("div", { class: "attach" },
    h("label", { for: "attach", class: "attach-label" }, t("attach_label")),
    input,
    h("small", { id: "attach-hint", class: "hint" }, t("attach_hint")),
    h("div", { id: "attach-chosen", "aria-live": "polite" }, chosenFileView()),
  );
}

function chosenFileView(error, status) {
  const file = attached.file;
  if (!file) return [];
  return h("div", { class: "attach-chosen", role: "group", "aria-label": t("attach_chosen") },
    attached.preview ? h("img", { src: attached.preview, alt: file.name, class: "attach-thumb" }) : h("span", { class: "attach-icon", "aria-hidden": "true" }, "📄"),
    h("span", { class: "attach-name" }, file.name),
    h("span", { class: "muted small" }, fileSize(file.size)),
    h("button", { type: "button", id: "attach-remove", onclick: () => removeAttachment() }, t("attach_remove")),
    error ? h("p", { class: "warn attach-error", role: "alert" }, error) : null,
    status ? h("p", { class: "muted small attach-error" }, status) : null,
  );
}

function renderChosenFile(error, status) {
  document.getElementById("attach-chosen")?.replaceChildren(...[chosenFileView(error, status)].flat());
}

function removeAttachment() {
  forgetAttachment();
  const input = document.getElementById("attach");
  if (input) { input.value = ""; input.focus(); }
  renderChosenFile();
}

function uploadError(error) {
  const why = error instanceof ApiError ? error.message : t("error_generic");
  if (error instanceof ApiError && error.status === 413) return t("attach_too_large", { why });
  if (error instanceof ApiError && error.status === 415) return t("attach_type", { why });
  return t("attach_refused", { why });
}

async function uploadAttachment(file) {
  const form = new FormData();
  form.append("file", file, file.name);
  const headers = { Accept: "application/json" };
  if (state.csrf) headers["X-CSRF-Token"] = state.csrf;
  const response = await fetch(`/api/conversations/${state.current}/attachments`, {
    method: "POST", headers, credentials: "same-origin", body: form,
  });
  const data = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, data?.error, response.headers);
  return data;
}

async function sendWithAttachment(text) {
  const file = attached.file;
  renderChosenFile(null, t("attach_uploading", { name: file.name }));
  let upload;
  try {
    upload = await uploadAttachment(file);
  } catch (error) {
    renderChosenFile(uploadError(error));
    if (error instanceof ApiError && error.status === 401) await attempt(() => Promise.reject(error));
    return undefined;
  }
  // A WhatsApp audio carries no caption: the text follows as a message of its own.
  const apart = upload.kind === "audio" && text;
  const sent = await sendReply({ ...(text && !apart ? { text } : {}), attachments: [{ upload_id: upload.id }] });
  if (!sent) { renderChosenFile(); return undefined; }
  forgetAttachment();
  const input = document.getElementById("attach");
  if (input) input.value = "";
  renderChosenFile();
  if (apart) await sendReply({ text });
  return sent;
}

async function postNote(text) {
  const value = text?.value.trim();
  if (!value) return text?.focus();
  const added = await attempt(() => api("POST", `/api/conversations/${state.current}/notes`, { text: value }));
  if (added) { text.value = ""; await openConversation(state.current, { keepScroll: false }); }
}

function closeForm() {
  const dispositions = state.options?.dispositions || [];
  const fields = h("div", { class: "params" });
  const picker = h(
    "select",
    { id: "disposition", required: true, onchange: () => showFields() },
    h("option", { value: "" }, t("choose_disposition")),
    dispositions.map((d) => h("option", { value: d.code }, d.label)),
  );
  function showFields() {
    const chosen = dispositions.find((d) => d.code === picker.value);
    fields.replaceChildren(
      ...(chosen?.requires || []).map((name) => {
        if (name === "date") return field(t("date"), h("input", { type: "date", name, id: "disposition-date", required: true }));
        if (name === "amount") return field(t("amount"), h("input", { type: "number", name, id: "disposition-amount", min: "0", step: "0.01", inputmode: "decimal", required: true }));
        return field(t("note_field"), h("textarea", { name, id: `disposition-${name}`, rows: 2, required: true }));
      }),
    );
  }
  return h(
    "form",
    {
      class: "card",
      id: "close-form",
      onsubmit: async (event) => {
        event.preventDefault();
        const disposition = { code: picker.value };
        for (const input of fields.querySelectorAll("input, textarea")) if (input.value) disposition[input.name] = input.value;
        const body = { disposition };
        const followUp = followUpAt(event.target);
        if (followUp === false) return;
        if (followUp) body.follow_up_at = followUp;
        const closed = await attempt(() => api("POST", `/api/conversations/${state.current}/close`, body));
        if (closed) {
          toast(t("closed_ok"), "ok");
          state.current = null;
          state.detail = null;
          await loadConversations();
          renderList();
          renderConversation();
        }
      },
    },
    h("h3", {}, t("close_title")),
    field(t("disposition"), picker),
    fields,
    followUpField(),
    h("button", { type: "submit", id: "close" }, t("close")),
  );
}

function transferForm() {
  const queues = (state.options?.queues || []).filter((q) => q.id !== state.detail?.queue?.id);
  const agents = state.options?.agents || [];
  if (!queues.length && !agents.length) return null;
  const picker = h(
    "select",
    { id: "transfer-target" },
    queues.length ? h("optgroup", { label: t("transfer_queues") }, queues.map((q) => h("option", { value: `queue:${q.id}` }, q.name))) : null,
    agents.length ? h("optgroup", { label: t("transfer_agents") }, agents.map((a) => h("option", { value: `agent:${a.id}`, dataset: { agent: a.id } }, transferAgentLabel(a)))) : null,
  );
  return h(
    "form",
    {
      class: "card",
      id: "transfer-form",
      onsubmit: async (event) => {
        event.preventDefault();
        const [kind, id] = picker.value.split(":");
        const target = kind === "agent" ? { agent_id: id } : { queue_id: id };
        const moved = await attempt(() => api("POST", `/api/conversations/${state.current}/transfer`, target));
        if (moved) { toast(t("transferred_ok"), "ok"); state.current = null; state.detail = null; await loadConversations(); renderList(); renderConversation(); }
      },
    },
    h("h3", {}, t("transfer_title")),
    field(t("transfer_to_target"), picker),
    h("button", { type: "submit" }, t("transfer")),
  );
}

// ------------------------------------------------------------------------------ the desk: customer panel

function when(iso, withTime = true) {
  if (!iso) return "—";
  const options = withTime
    ? { day: "numeric", month: "short", year: "numeric", hour: "2-digit", minute: "2-digit" }
    : { day: "numeric", month: "short", year: "numeric" };
  return new Date(iso).toLocaleString(lang === "es" ? "es-MX" : "en-US", options);
}

function customerPanel() {
  const body = h("div", { id: "customer-panel-body", hidden: !state.panelOpen }, h("p", { class: "muted" }, t("panel_loading")));
  const toggle = h("button", {
    type: "button", class: "panel-toggle", id: "panel-toggle", "aria-expanded": String(state.panelOpen), "aria-controls": "customer-panel-body",
    onclick: () => togglePanel(),
  }, state.panelOpen ? t("panel_hide") : t("panel_show"));
  return h("section", { class: "card panel", id: "customer-panel", "aria-labelledby": "customer-panel-h" },
    h("div", { class: "panel-head" }, h("h3", { id: "customer-panel-h" }, t("panel_title")), toggle),
    body,
  );
}

function togglePanel(open = !state.panelOpen) {
  state.panelOpen = open;
  const body = document.getElementById("customer-panel-body");
  const toggle = document.getElementById("panel-toggle");
  if (body) body.hidden = !open;
  if (toggle) { toggle.setAttribute("aria-expanded", String(open)); toggle.textContent = open ? t("panel_hide") : t("panel_show"); }
}

async function loadPanel(conversationId) {
  const detail = state.detail;
  if (!detail || detail.id !== conversationId) return;
  const [customer, routing] = await Promise.all([
    attempt(() => api("GET", `/api/customers/${detail.customer.id}`), { quiet: true }),
    attempt(() => api("GET", `/api/conversations/${conversationId}/routing`), { quiet: true }),
  ]);
  if (state.current !== conversationId) return; // the agent moved on meanwhile
  state.panel = { conversation: conversationId, customer, routing };
  renderPanel();
}

function renderPanel() {
  const body = document.getElementById("customer-panel-body");
  const panel = state.panel;
  if (!body || !panel || panel.conversation !== state.current) return;
  const customer = panel.customer;
  if (!customer) return body.replaceChildren(h("p", { class: "muted" }, t("panel_unavailable")));
  body.replaceChildren(
    ...[
      h("p", { class: "panel-name" }, h("strong", {}, state.detail?.customer?.name || t("unknown_customer"))),
      panelIdentities(customer),
      panelSuggestions(customer),
      panelHistory(customer),
      panelRouting(panel.routing),
    ].filter(Boolean),
  );
}

function identityLabel(identifier) {
  return `${t(`identity_${identifier.kind}`)}: ${identifier.value}`;
}

function panelIdentities(customer) {
  return h("div", { class: "panel-part", id: "panel-identities" },
    h("h4", {}, t("panel_identities")),
    h("ul", { class: "plain" }, customer.identifiers.map((i) =>
      h("li", { dataset: { key: i.key } }, identityLabel(i), i.blocked ? h("span", { class: "chip" }, t("identity_blocked")) : null))),
  );
}

function panelSuggestions(customer) {
  const pending = customer.suggestions || [];
  if (!pending.length) return null;
  return h("div", { class: "panel-part", id: "panel-suggestions" },
    h("h4", {}, t("panel_suggestions")),
    h("ul", { class: "plain" }, pending.map((s) =>
      h("li", { class: "suggestion", dataset: { suggestion: s.id } },
        h("div", {}, t("suggestion_text", { other: identityLabel(s.other), mine: s.identifier.value })),
        h("div", { class: "muted small" },
          t(`evidence_${s.evidence.source}`), " · ",
          s.other_customer_id ? t("suggestion_other_customer") : t("suggestion_no_customer")),
        h("div", { class: "actions" },
          h("button", { type: "button", class: "primary", onclick: () => decideSuggestion(s, true) }, t("suggestion_confirm")),
          h("button", { type: "button", onclick: () => decideSuggestion(s, false) }, t("suggestion_reject")),
        ),
      ))),
  );
}

async function decideSuggestion(suggestion, confirm) {
  const done = await attempt(() => api("POST", `/api/suggestions/${suggestion.id}/${confirm ? "confirm" : "reject"}`));
  if (!done) return;
  toast(t(confirm ? "suggestion_confirmed" : "suggestion_rejected"), "ok");
  const id = state.current;
  await openConversation(id, { keepScroll: true }); // a merge brings the other customer's timeline
  await loadPanel(id);
}

function dispositionText(d) {
  if (!d) return null;
  const parts = [d.label || d.code];
  if (d.date) parts.push(d.date);
  if (d.amount) parts.push(`$${d.amount}`);
  return parts.join(" · ");
}

function panelHistory(customer) {
  const past = (customer.conversations || []).filter((c) => c.id !== state.current).reverse();
  return h("div", { class: "panel-part", id: "panel-history" },
    h("h4", {}, t("panel_history")),
    past.length === 0
      ? h("p", { class: "muted small" }, t("panel_no_history"))
      : h("ul", { class: "plain history" }, past.map((c) =>
          h("li", { dataset: { conversation: c.id } },
            h("div", {},
              h("span", { class: `chip ${c.channel}` }, c.channel), " ",
              h("span", {}, when(c.opened_at, false)), " · ",
              c.queue?.name || "—", " · ",
              t(`status_${c.status}`)),
            c.disposition ? h("div", { class: "small" }, dispositionText(c.disposition)) : null,
            c.follow_up_at ? h("div", { class: "small follow-up" }, t("follow_up_on", { when: when(c.follow_up_at) })) : null,
          ))),
  );
}

function filteredReason(reason) {
  const [klass, rest] = reason.split(":");
  if (klass === "missing_skill") {
    if (!rest) return t("why_missing_skill_any");
    const [skill, level] = rest.split("<");
    return t("why_missing_skill", { skill, level });
  }
  if (klass === "at_capacity") return t("why_at_capacity", { channel: rest || "" });
  const key = `why_${klass}`;
  const said = t(key);
  return said === key ? reason : said;
}

function panelRouting(routing) {
  const box = h("div", { class: "panel-part", id: "panel-routing" }, h("h4", {}, t("panel_routing")));
  const decisions = routing?.decisions || [];
  const me = state.session?.agent?.id || state.me?.agent?.id;
  const decision = [...decisions].reverse().find((d) => d.explanation?.winner === me) || decisions[decisions.length - 1];
  if (!decision) {
    box.append(h("p", { class: "muted small" }, t("why_none")));
    return box;
  }
  const x = decision.explanation || {};
  const names = new Map((routing.agents || []).map((a) => [a.id, a.name]));
  const queue = (routing.queues || []).find((q) => q.id === x.queue_id);
  const mine = (x.candidates || []).find((c) => c.agent_id === me);
  const skills = state.me?.agent?.skills || {};
  const required = Object.entries(queue?.required_skills || {});
  const others = (x.candidates || []).filter((c) => c.agent_id !== me);
  const lines = [
    h("li", {}, t("why_queue", { queue: queue?.name || state.detail?.queue?.name || "—" })),
    h("li", {}, t("why_when", { when: when(decision.decided_at), trigger: t(`trigger_${x.trigger}`) === `trigger_${x.trigger}` ? x.trigger || "—" : t(`trigger_${x.trigger}`) })),
    required.length
      ? h("li", {}, t("why_skills", { list: required.map(([skill, level]) => t("why_skill", { skill, mine: skills[skill] ?? 0, level: Math.min(level, x.min_proficiency ?? level) })).join(", ") }))
      : null,
    mine ? h("li", {}, t("why_score", { score: mine.score })) : null,
    x.winner === me ? null : h("li", {}, t("why_not_winner")),
    others.length
      ? h("li", {}, t("why_others", { list: others.map((c) => `${names.get(c.agent_id) || "?"} (${c.score})`).join(", ") }))
      : null,
  ];
  const filtered = x.filtered || [];
  if (filtered.length) {
    lines.push(h("li", {}, t("why_filtered"),
      h("ul", {}, filtered.map((f) => h("li", {}, `${names.get(f.agent_id) || "?"}: ${filteredReason(f.reason)}`)))));
  } else if (x.detail === "summary" && x.filtered_counts) {
    const counts = Object.entries(x.filtered_counts).filter(([, n]) => n > 0);
    if (counts.length) lines.push(h("li", {}, t("why_filtered_counts", { list: counts.map(([k, n]) => `${filteredReason(k)} ${n}`).join(", ") })));
  }
  box.append(h("ul", { class: "why" }, lines));
  return box;
}

// ------------------------------------------------------------------------------ the desk: follow-up, transfer, markers

function followUpField() {
  const input = h("input", { type: "datetime-local", name: "follow_up_at", id: "follow-up" });
  return field(t("follow_up_field"), input, t("follow_up_hint"));
}

/** The follow-up's time as the API wants it (ISO 8601 with offset), null when none, false when wrong. */
function followUpAt(form) {
  const input = form.querySelector("#follow-up");
  if (!input?.value) return null;
  const at = new Date(input.value); // the browser's local time
  if (Number.isNaN(at.getTime()) || at.getTime() <= Date.now()) {
    toast(t("follow_up_future"));
    input.focus();
    return false;
  }
  return at.toISOString();
}

function transferAgentLabel(agent) {
  return `${agent.name} — ${t(agent.presence)}${agent.presence === "available" ? `, ${t("transfer_free", { n: agent.free })}` : ""}`;
}

function shownInTimeline(entry) {
  // A deletion or an edit whose message is on screen is said on that message.
  return !((entry.kind === "deleted" || entry.kind === "edited") && entry.about_id);
}

function latestEdits(timeline) {
  const edits = new Map(); // message id → its latest edit (the timeline is oldest first)
  for (const entry of timeline) if (entry.kind === "edited" && entry.about_id) edits.set(entry.about_id, entry);
  return edits;
}

function timelineBody(entry, edits) {
  const edit = edits.get(entry.id);
  if (entry.kind === "edited") return h("span", {}, entry.text || "");
  if (!edit) return entryBody(entry);
  return [entryBody({ ...entry, text: edit.text }), entry.text ? h("div", { class: "was-text muted small" }, t("edited_before", { text: entry.text })) : null].flat();
}

function entryMarkers(entry) {
  return [
    entry.deleted ? h("span", { class: "marker deleted" }, ` · ${t("marker_deleted")}`) : null,
    entry.edited || entry.kind === "edited" ? h("span", { class: "marker edited" }, ` · ${t("marker_edited")}`) : null,
  ];
}

// ------------------------------------------------------------------------------ the desk: keyboard

const SHORTCUTS = [
  ["Alt+A", "key_accept"],
  ["Alt+D", "key_decline"],
  ["Alt+N", "key_composer"],
  ["Ctrl+Enter", "key_send"],
  ["Alt+↓ / Alt+↑", "key_next"],
  ["Alt+P", "key_panel"],
  ["Alt+C", "key_close"],
  ["Alt+T", "key_transfer"],
  ["?", "key_help"],
  ["Esc", "key_escape"],
];

function openShortcuts() {
  let dialog = document.getElementById("shortcuts");
  if (!dialog) {
    dialog = h("dialog", { id: "shortcuts", "aria-labelledby": "shortcuts-h" });
    document.body.append(dialog);
  }
  dialog.replaceChildren(
    h("h2", { id: "shortcuts-h" }, t("shortcuts_title")),
    h("dl", { class: "keys" }, SHORTCUTS.flatMap(([keys, what]) => [h("dt", {}, h("kbd", {}, keys)), h("dd", {}, t(what))])),
    h("form", { method: "dialog" }, h("button", { type: "submit", class: "primary", id: "shortcuts-close" }, t("close_reader"))),
  );
  if (!dialog.open) dialog.showModal();
}

function typing(target) {
  return target instanceof HTMLElement && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName));
}

function stepConversation(by) {
  const list = state.conversations;
  if (!list.length) return;
  const at = list.findIndex((c) => c.id === state.current);
  const next = list[(at + by + list.length) % list.length] || list[0];
  openConversation(next.id).then(() => document.querySelector(`button.conv[data-conversation="${next.id}"]`)?.focus());
}

function deskShortcut(event) {
  if (state.session?.role !== "agent") return;
  if (!event.altKey && !event.ctrlKey && !event.metaKey && event.key === "?" && !typing(event.target)) {
    event.preventDefault();
    openShortcuts();
    return;
  }
  if (!event.altKey || event.ctrlKey || event.metaKey) return;
  const key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
  const first = [...state.offers.values()][0];
  const focus = (selector) => { const node = document.querySelector(selector); if (node) { event.preventDefault(); node.focus(); } };
  if (key === "a" && first) { event.preventDefault(); answer(first, true); }
  else if (key === "d" && first) { event.preventDefault(); answer(first, false); }
  else if (key === "n") focus("#reply");
  else if (key === "c") focus("#disposition");
  else if (key === "t") focus("#transfer-target");
  else if (key === "p" && document.getElementById("customer-panel")) { event.preventDefault(); togglePanel(); }
  else if (key === "ArrowDown") { event.preventDefault(); stepConversation(1); }
  else if (key === "ArrowUp") { event.preventDefault(); stepConversation(-1); }
}

// ------------------------------------------------------------------------------ the wall

// The wall arrives over /ws/supervisor (the session cookie; this workspace only): a snapshot on
// connect, then the queues' figures and the agents when they change, and each new alert.
function connectWall() {
  openSocket("/ws/supervisor", async () => {}, onWallFrame, connectWall);
}

function onWallFrame(frame) {
  switch (frame.type) {
    case "wall":
      state.stats = frame.queues;
      state.agents = frame.agents;
      state.alerts = frame.alerts;
      renderTiles(); renderAgents(); renderAlerts(); renderQueueChoices();
      break;
    case "queue_stats":
      state.stats = frame.queues;
      renderTiles();
      break;
    case "agents":
      state.agents = frame.agents;
      renderAgents();
      break;
    case "alert":
      state.alerts = [frame.alert, ...state.alerts].slice(0, 50);
      renderAlerts();
      break;
    case "error":
      toast(frame.error.message);
      break;
  }
}

function renderAlerts() {
  const box = document.getElementById("alerts");
  if (!box) return;
  const items = state.alerts || [];
  box.replaceChildren(
    h("h2", { id: "alerts-h" }, t("alerts")),
    items.length
      ? h("ol", { class: "alerts" }, items.map((a) =>
          h("li", { class: `alert ${a.kind}`, dataset: { alert: a.id } },
            h("time", { datetime: a.raised_at }, clock(a.raised_at)), " ",
            h("strong", {}, t(`alert_${a.kind}`)), " ",
            a.kind === "sla_breach"
              ? t("alert_sla_text", { queue: a.queue_name || "—", waited: duration(a.waited_s ?? 0), target: duration(a.sla_threshold_s ?? 0) })
              : t(`alert_${a.kind}_text`),
            a.conversation_id ? [" ", h("button", { type: "button", class: "link-dark", onclick: () => readConversation(a.conversation_id) }, t("read_conversation"))] : null,
          )))
      : h("p", { class: "muted" }, t("no_alerts")),
  );
}

function renderQueueChoices() {
  // The search form's queue list follows the snapshot (the form may be drawn before it arrives).
  const select = document.getElementById("search-queue");
  if (!select || select.options.length > 1) return;
  for (const q of state.stats?.queues || []) select.append(h("option", { value: q.queue_id }, q.display_name || q.name));
}

function wallView() {
  const tiles = h("div", { id: "tiles", class: "tiles", "aria-label": t("queues") });
  const view = h(
    "div",
    {},
    header([
      h("span", { class: "who" }, state.session.agent?.name || state.session.workspace),
      supervisorNav("wall"),
      h("span", { id: "live", class: "live", role: "status" }),
    ]),
    h(
      "main",
      { id: "main", class: "wall" },
      h("h1", {}, t("wall_title")),
      tiles,
      h("section", { id: "alerts", class: "card", "aria-labelledby": "alerts-h", "aria-live": "polite" }),
      h("div", { class: "wall-grid" },
        h("section", { id: "agents", class: "card", "aria-labelledby": "agents-h" }),
        h("section", { id: "search", class: "card", "aria-labelledby": "search-h" }, searchForm(), h("div", { id: "results" })),
      ),
      h("section", { id: "reader", class: "card reader", hidden: true }),
    ),
  );
  queueMicrotask(() => { renderLive(); renderTiles(); renderAgents(); renderAlerts(); search(); });
  return view;
}

function renderTiles() {
  const box = document.getElementById("tiles");
  if (!box || !state.stats) return;
  box.replaceChildren(
    ...(state.stats.queues || []).map((q) =>
      h(
        "article",
        { class: "tile", dataset: { queue: q.queue_id } },
        h("h2", {}, q.display_name || q.name),
        h("dl", {},
          h("dt", {}, t("waiting_count")), h("dd", { dataset: { stat: "waiting" } }, String(q.waiting + q.offered)),
          h("dt", {}, t("longest_wait")), h("dd", {}, duration(q.longest_wait_s ?? 0)),
          h("dt", {}, t("sla_today")), h("dd", {}, q.sla_pct_today == null ? "—" : `${Math.round(q.sla_pct_today)} %`),
          h("dt", {}, t("agents_available")), h("dd", {}, String(q.agents.available)),
          h("dt", {}, t("agents_busy")), h("dd", {}, String(q.agents.busy)),
          h("dt", {}, t("agents_away")), h("dd", {}, String(q.agents.away)),
          h("dt", {}, t("agents_offline")), h("dd", {}, String(q.agents.offline)),
        ),
        hoursLine(q),
        notOfferedLine(q),
      ),
    ),
  );
}

// Open or closed by the queue's business hours, and when that changes.
function hoursLine(q) {
  const when = q.next_change_at
    ? new Date(q.next_change_at).toLocaleString(lang === "es" ? "es-MX" : "en-US", { weekday: "short", hour: "2-digit", minute: "2-digit" })
    : null;
  const text = q.open
    ? (when ? t("queue_open_until", { when }) : t("queue_open_always"))
    : (when ? t("queue_closed_until", { when }) : t("queue_closed"));
  return h("p", { class: `hours ${q.open ? "open" : "closed"}`, dataset: { open: String(q.open) } }, text);
}

// Why the queue's waiting conversations are not offered (GET /api/queues/stats: not_offered).
function notOfferedLine(q) {
  const why = q.not_offered;
  if (!why) return null;
  const when = why.next_opening_at
    ? new Date(why.next_opening_at).toLocaleString(lang === "es" ? "es-MX" : "en-US", { weekday: "short", hour: "2-digit", minute: "2-digit" })
    : null;
  const text = why.reason === "queue_closed" && when ? t("not_offered_queue_closed_until", { when }) : t(`not_offered_${why.reason}`);
  return h("p", { class: "warn not-offered", dataset: { reason: why.reason } }, text);
}

function renderAgents() {
  const box = document.getElementById("agents");
  if (!box) return;
  const agents = state.agents || [];
  box.replaceChildren(
    h("h2", { id: "agents-h" }, t("agents")),
    h("table", { class: "grid" },
      h("thead", {}, h("tr", {}, h("th", {}, t("agent")), h("th", {}, t("presence")), h("th", {}, t("load")), h("th", {}, t("offers")))),
      h("tbody", {}, agents.map((a) =>
        h("tr", { dataset: { agent: a.id } },
          h("td", {}, a.name),
          h("td", {}, h("span", { class: `presence ${a.presence}` }, t(a.presence)), a.connected ? "" : ` (${t("not_connected")})`),
          h("td", {}, Object.entries(a.load).map(([ch, n]) => `${ch} ${n}/${a.capacity[ch] ?? "—"}`).join(" · ") || "0"),
          h("td", {}, String(a.pending_offers)),
        ))),
    ),
  );
}

function searchForm() {
  const queues = state.stats?.queues || [];
  const status = h("select", { name: "status", id: "search-status" },
    ["", "waiting", "offered", "assigned", "triage", "closed"].map((v) => h("option", { value: v, selected: v === "waiting" }, v ? t(`status_${v}`) : t("any"))));
  const queue = h("select", { name: "queue_id", id: "search-queue" }, h("option", { value: "" }, t("any")), queues.map((q) => h("option", { value: q.queue_id }, q.display_name || q.name)));
  const channel = h("select", { name: "channel", id: "search-channel" }, ["", "whatsapp", "instagram", "email"].map((v) => h("option", { value: v }, v || t("any"))));
  const waited = h("input", { type: "number", name: "waiting_min", id: "search-waited", min: "0", step: "1", inputmode: "numeric" });
  return h(
    "form",
    { class: "search", onsubmit: (e) => { e.preventDefault(); search(); } },
    h("h2", { id: "search-h" }, t("search_title")),
    h("div", { class: "row" },
      field(t("status"), status), field(t("queue"), queue), field(t("channel"), channel), field(t("waiting_more_than_min"), waited),
    ),
    h("button", { type: "submit", class: "primary" }, t("search")),
  );
}

async function search() {
  const form = document.querySelector("form.search");
  if (!form) return;
  const params = new URLSearchParams({ limit: "50" });
  for (const [key, value] of new FormData(form)) {
    if (!value) continue;
    if (key === "waiting_min") params.set("waiting_longer_than_s", String(Number(value) * 60));
    else params.set(key, String(value));
  }
  const page = await attempt(() => api("GET", `/api/conversations?${params}`));
  if (!page) return;
  state.found = page.items;
  renderResults();
}

function renderResults() {
  const box = document.getElementById("results");
  if (!box) return;
  const agents = state.agents || [];
  const items = state.found || [];
  if (!items.length) return box.replaceChildren(h("p", { class: "muted" }, t("no_results")));
  box.replaceChildren(
    h("table", { class: "grid" },
      h("thead", {}, h("tr", {}, [t("customer"), t("channel"), t("queue"), t("status"), t("agent"), t("waiting_col"), ""].map((x) => h("th", {}, x)))),
      h("tbody", {}, items.map((c) => {
        const who = agents.find((a) => a.id === c.agent_id);
        const pick = h("select", { "aria-label": t("assign_to"), class: "assign-agent" }, agents.map((a) => h("option", { value: a.id }, a.name)));
        return h("tr", { dataset: { conversation: c.id } },
          h("td", {}, h("button", { type: "button", class: "link-dark", onclick: () => readConversation(c.id) }, c.customer.name || t("unknown_customer"))),
          h("td", {}, h("span", { class: `chip ${c.channel}` }, c.channel)),
          h("td", {}, c.queue?.name || "—"),
          h("td", {}, t(`status_${c.status}`)),
          h("td", {}, who?.name || "—"),
          h("td", {}, c.enqueued_at && c.status !== "closed" ? duration((Date.now() - new Date(c.enqueued_at)) / 1000) : "—"),
          h("td", { class: "actions" },
            c.status === "closed" ? null : [
              pick,
              h("button", { type: "button", class: "assign", onclick: () => move(c.id, "assign", { agent_id: pick.value }) }, t("assign")),
              c.status === "assigned" || c.status === "offered" ? h("button", { type: "button", class: "requeue", onclick: () => move(c.id, "requeue", {}) }, t("requeue")) : null,
            ],
          ),
        );
      })),
    ),
  );
}

async function move(id, how, body) {
  const done = await attempt(() => api("POST", `/api/conversations/${id}/${how}`, body));
  if (done) {
    toast(t(how === "assign" ? "assigned_ok" : "requeued_ok"), "ok");
    setTimeout(search, 400);
    setTimeout(search, 1500);
  }
}

async function readConversation(id) {
  const detail = await attempt(() => api("GET", `/api/conversations/${id}?limit=100`));
  const box = document.getElementById("reader");
  if (!detail || !box) return;
  box.hidden = false;
  box.replaceChildren(
    h("div", { class: "conv-head" },
      h("h2", {}, detail.customer.name || t("unknown_customer")),
      h("span", { class: `chip ${detail.channel}` }, detail.channel),
      h("span", { class: "muted" }, t(`status_${detail.status}`)),
      h("button", { type: "button", onclick: () => { box.hidden = true; } }, t("close_reader")),
    ),
    h("ol", { class: "timeline reader-timeline" }, detail.timeline.map((entry) =>
      h("li", { class: `entry ${entry.direction} ${entry.kind}` },
        entry.direction === "note" ? h("span", { class: "tag" }, t("note_tag")) : null,
        h("div", { class: "text" }, entryBody(entry)),
        h("div", { class: "meta" }, h("time", { datetime: entry.at }, clock(entry.at)), " ", entry.channel,
          entry.direction === "out" && entry.delivery_state ? ` ${TICKS[entry.delivery_state] || ""} ${t(entry.delivery_state)}` : ""),
      ))),
  );
  box.scrollIntoView({ block: "nearest" });
}

// ------------------------------------------------------------------------------ the reports

// Supervisors' and admins' report pages (#informes): GET /api/reports/… for a range of local
// dates (default: the last 7 days) and, with several campaigns, one of them.  The charts are
// inline SVG drawn by the small functions below; every bar and point carries its number in a
// <title> (a tooltip, and what a screen reader says), and each chart has its table under
// "Ver los números".  docs/reports.md defines every measure.

const SVG = "http://www.w3.org/2000/svg";

function s(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "dataset") for (const [k, v] of Object.entries(value)) node.setAttribute(`data-${k}`, String(v));
    else node.setAttribute(key, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const locale = () => (lang === "es" ? "es-MX" : "en-US");
const num = (v, digits = 0) => (v == null ? "—" : new Intl.NumberFormat(locale(), { maximumFractionDigits: digits }).format(v));
const pct = (v) => (v == null ? "—" : `${num(v, 1)} %`);
const ratioPct = (v) => (v == null ? "—" : pct(100 * v));

// A report's duration: "45 s", "2 min 15 s", "1 h 05 min".
function span(seconds) {
  if (seconds == null) return "—";
  const total = Math.max(0, Math.round(seconds));
  if (total < 60) return `${total} s`;
  if (total < 3600) {
    const sec = total % 60;
    return sec ? `${Math.floor(total / 60)} min ${sec} s` : `${total / 60} min`;
  }
  return `${Math.floor(total / 3600)} h ${String(Math.floor((total % 3600) / 60)).padStart(2, "0")} min`;
}

function isoDay(date) {
  return `${date.getFullYear()}-${String(date.getMonth() + 1).padStart(2, "0")}-${String(date.getDate()).padStart(2, "0")}`;
}

function daysOf(from, to) {
  const out = [];
  const day = new Date(`${from}T12:00:00`);
  const last = new Date(`${to}T12:00:00`);
  while (day <= last && out.length < 366) {
    out.push(isoDay(day));
    day.setDate(day.getDate() + 1);
  }
  return out;
}

function shortDay(iso) {
  return new Date(`${iso}T12:00:00`).toLocaleDateString(locale(), { day: "numeric", month: "short" });
}

// The value axis: a top at or above ``max`` in about four round steps (whole steps for counts).
function niceScale(max, whole) {
  const rough = Math.max(max, whole ? 1 : 1e-9) / 4;
  const power = 10 ** Math.floor(Math.log10(rough));
  let step = [1, 2, 2.5, 5, 10].map((m) => m * power).find((v) => v >= rough);
  if (whole) step = Math.max(1, Math.ceil(step));
  const top = Math.max(step, Math.ceil(max / step - 1e-9) * step);
  const ticks = [];
  for (let v = 0; v <= top + 1e-9; v += step) ticks.push(v);
  return { top, ticks };
}

// Drawn for the width it is shown at: a phone gets a narrower canvas, so its text stays legible.
function chartSize() {
  const narrow = window.innerWidth < 600;
  return { width: narrow ? 360 : 640, height: narrow ? 220 : 240, left: 50, right: 10, top: 14, bottom: 30, labels: narrow ? 6 : 12 };
}

// The frame every chart shares: the svg (role img, <title> and <desc>), the value axis with
// its gridlines, and the plot's geometry.
function chartFrame(title, description, max, formatTick, whole) {
  const { width, height, left, right, top, bottom, labels } = chartSize();
  const plot = { x: left, y: top, w: width - left - right, h: height - top - bottom, labels };
  const scale = niceScale(max, whole);
  const y = (v) => plot.y + plot.h - (plot.h * Math.min(v, scale.top)) / scale.top;
  const grid = scale.ticks.map((v) =>
    s("g", { class: "tick" },
      s("line", { x1: plot.x, x2: plot.x + plot.w, y1: y(v), y2: y(v) }),
      s("text", { x: plot.x - 6, y: y(v) + 4, "text-anchor": "end" }, formatTick(v))));
  const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": title, class: "chart" },
    s("title", {}, title), s("desc", {}, description), ...grid);
  return { svg, plot, y };
}

// Vertical bars: one group per category, one bar per series; a bar's <title> says its value.
function barChart({ title, description, categories, series, format = num, tick = format, lines = [], label = (c) => c, whole = true }) {
  const values = series.flatMap((x) => x.values.filter((v) => v != null));
  const max = Math.max(0, ...values, ...lines.map((l) => l.value));
  const { svg, plot, y } = chartFrame(title, description, max, tick, whole);
  const band = plot.w / Math.max(1, categories.length);
  const gap = Math.min(6, band * 0.2);
  const barW = Math.max(1, (band - gap) / series.length);
  const every = Math.ceil(categories.length / plot.labels); // at most about 12 labels (6 on a phone)
  categories.forEach((category, i) => {
    const x0 = plot.x + i * band + gap / 2;
    const group = s("g", { class: "category", dataset: { category } });
    series.forEach((serie, k) => {
      const v = serie.values[i];
      if (v == null) return;
      group.append(s("rect", {
        class: `bar ${serie.class}`, x: x0 + k * barW, y: y(v), width: Math.max(1, barW - 1), height: Math.max(0, plot.y + plot.h - y(v)),
        dataset: { series: serie.class, value: v },
      }, s("title", {}, `${label(category)} · ${serie.name}: ${format(v)}`)));
    });
    if (i % every === 0) group.append(s("text", { class: "axis", x: x0 + (band - gap) / 2, y: plot.y + plot.h + 18, "text-anchor": "middle" }, label(category)));
    svg.append(group);
  });
  for (const line of lines) { // named in the legend (close targets would overlap as labels)
    svg.append(s("g", { class: "target", dataset: { target: line.value } },
      s("line", { x1: plot.x, x2: plot.x + plot.w, y1: y(line.value), y2: y(line.value) }),
      s("title", {}, line.label)));
  }
  return svg;
}

// A line with a marker per point (gaps where a category has no value).
function lineChart({ title, description, categories, values, max = 100, tick = pct, pointTitle, label = (c) => c }) {
  const { svg, plot, y } = chartFrame(title, description, max, tick, false);
  const band = plot.w / Math.max(1, categories.length);
  const x = (i) => plot.x + band * (i + 0.5);
  let path = "";
  values.forEach((v, i) => {
    if (v == null) return;
    path += `${path && values[i - 1] != null ? "L" : "M"}${x(i).toFixed(1)},${y(v).toFixed(1)} `;
  });
  if (path) svg.append(s("path", { class: "line", d: path.trim() }));
  const every = Math.ceil(categories.length / plot.labels);
  categories.forEach((category, i) => {
    if (i % every === 0) svg.append(s("text", { class: "axis", x: x(i), y: plot.y + plot.h + 18, "text-anchor": "middle" }, label(category)));
    const v = values[i];
    if (v != null) svg.append(s("circle", { class: "point", cx: x(i), cy: y(v), r: 5, dataset: { category, value: v } }, s("title", {}, pointTitle(i))));
  });
  return svg;
}

// Horizontal bars, one per item, its label and number beside it.
function rankChart({ title, description, items }) {
  const row = 30;
  const height = Math.max(1, items.length) * row + 8;
  const { width } = chartSize();
  const labelW = width < 600 ? 130 : 170;
  const max = Math.max(1, ...items.map((i) => i.value));
  const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": title, class: "chart rank" },
    s("title", {}, title), s("desc", {}, description));
  items.forEach((item, i) => {
    const w = ((width - labelW - 90) * item.value) / max;
    const y = 4 + i * row;
    svg.append(s("g", { class: "item", dataset: { key: item.key, value: item.value } },
      s("text", { class: "label", x: labelW - 8, y: y + row / 2 + 1, "text-anchor": "end" }, item.label || item.key),
      s("rect", { class: "bar disposition", x: labelW, y: y + 4, width: Math.max(1, w), height: row - 10 }, s("title", {}, item.text)),
      s("text", { class: "value", x: labelW + w + 6, y: y + row / 2 + 1 }, item.caption)));
  });
  return svg;
}

function legend(series, lines = []) {
  return h("ul", { class: "legend" },
    series.map((x) => h("li", {}, h("span", { class: `swatch ${x.class}`, "aria-hidden": "true" }), x.name)),
    lines.map((l) => h("li", { class: "target-key" }, h("span", { class: "swatch target", "aria-hidden": "true" }), l.label)));
}

function dataTable(head, rows) {
  return h("details", { class: "numbers" },
    h("summary", {}, t("report_table")),
    h("table", { class: "grid" },
      h("thead", {}, h("tr", {}, head.map((x) => h("th", { scope: "col" }, x)))),
      h("tbody", {}, rows.map((r) => h("tr", {}, r.map((x) => h("td", {}, x)))))));
}

// -- the page

const reports = { from: null, to: null, campaign: "", campaigns: null, data: null, error: null, loading: false };

function reportParams(extra = {}) {
  const params = new URLSearchParams({ from: reports.from, to: reports.to });
  if (reports.campaign) params.set("campaign", reports.campaign);
  for (const [k, v] of Object.entries(extra)) params.set(k, v);
  return params;
}

function csvLink(report, what, extra = {}) {
  const href = `/api/reports/${report}?${reportParams({ ...extra, format: "csv" })}`;
  return h("a", { class: "csv", href, download: `${report}.csv`, "aria-label": t("report_csv_of", { what }), dataset: { report } }, t("report_csv"));
}

function showView(view) {
  const next = view === "reports" ? "#informes" : "#sala";
  if (location.hash !== next) history.pushState(null, "", next);
  render();
}

function supervisorNav(current) {
  return h("nav", { class: "views", "aria-label": t("nav_label") },
    [["wall", t("nav_wall")], ["reports", t("nav_reports")]].map(([view, text]) =>
      h("a", { href: view === "reports" ? "#informes" : "#sala", id: `nav-${view}`, "aria-current": view === current ? "page" : null,
        onclick: (e) => { e.preventDefault(); showView(view); } }, text)));
}

function currentView() {
  return location.hash === "#informes" ? "reports" : "wall";
}

window.addEventListener("popstate", () => { if (state.session && state.session.role !== "agent") render(); });

function reportsView() {
  if (!reports.from) {
    const today = new Date();
    const week = new Date(today);
    week.setDate(today.getDate() - 6);
    reports.from = isoDay(week);
    reports.to = isoDay(today);
  }
  const from = h("input", { type: "date", id: "report-from", name: "from", value: reports.from, required: true });
  const to = h("input", { type: "date", id: "report-to", name: "to", value: reports.to, required: true });
  const campaign = h("select", { id: "report-campaign", name: "campaign" }, h("option", { value: "" }, t("report_all_campaigns")));
  const form = h("form", {
    class: "report-range card",
    onsubmit: (e) => {
      e.preventDefault();
      reports.from = from.value;
      reports.to = to.value;
      reports.campaign = campaign.value;
      loadReports();
    },
  },
  field(t("report_from"), from), field(t("report_to"), to),
  h("div", { id: "report-campaign-field", class: "campaign-field", hidden: true }, field(t("report_campaign"), campaign)),
  h("button", { type: "submit", class: "primary" }, t("report_show")));
  const view = h("div", {},
    header([h("span", { class: "who" }, state.session.agent?.name || state.session.workspace), supervisorNav("reports")]),
    h("main", { id: "main", class: "reports" },
      h("h1", {}, t("reports_title")),
      form,
      h("p", { id: "report-status", role: "status", class: "report-status" }),
      h("div", { id: "report-body" })));
  queueMicrotask(async () => {
    await loadCampaigns();
    if (reports.data) renderReports(); else loadReports();
  });
  return view;
}

async function loadCampaigns() {
  if (!reports.campaigns) {
    const list = await attempt(() => api("GET", "/api/campaigns"), { quiet: true });
    reports.campaigns = list?.campaigns || [];
  }
  const select = document.getElementById("report-campaign");
  const box = document.getElementById("report-campaign-field");
  if (!select || !box || reports.campaigns.length < 2) return;
  box.hidden = false;
  for (const c of reports.campaigns) select.append(h("option", { value: c.name, selected: c.name === reports.campaign }, c.display_name || c.name));
}

const REPORT_REQUESTS = {
  total: ["summary", {}],
  hours: ["summary", { group_by: "hour" }],
  days: ["summary", { group_by: "day" }],
  queues: ["queues", {}],
  agents: ["agents", {}],
  surveys: ["surveys", { group_by: "day" }],
  dispositions: ["dispositions", {}],
};

async function loadReports() {
  const status = document.getElementById("report-status");
  const asked = reportParams().toString();
  reports.loading = true;
  if (status) { status.className = "report-status muted"; status.textContent = t("report_loading"); }
  const names = Object.keys(REPORT_REQUESTS);
  let failed = null;
  const answers = await Promise.all(names.map(async (name) => {
    const [report, extra] = REPORT_REQUESTS[name];
    try {
      return await api("GET", `/api/reports/${report}?${reportParams(extra)}`);
    } catch (error) {
      failed = failed || error;
      return null;
    }
  }));
  if (reportParams().toString() !== asked) return; // a newer range was asked meanwhile
  reports.loading = false;
  if (failed) {
    if (failed instanceof ApiError && failed.status === 401) { state.session = null; render(); return; }
    reports.data = null;
    reports.error = failed;
  } else {
    reports.error = null;
    reports.data = Object.fromEntries(names.map((n, i) => [n, answers[i]]));
  }
  renderReports();
}

function fieldName(name) {
  return { from: t("report_from"), to: t("report_to"), campaign: t("report_campaign") }[name] || name;
}

function renderReports() {
  const status = document.getElementById("report-status");
  const body = document.getElementById("report-body");
  if (!status || !body) return;
  if (reports.error) {
    const e = reports.error;
    status.className = "report-status warn";
    status.setAttribute("role", "alert");
    status.textContent = e instanceof ApiError && e.error.field
      ? t("report_error", { field: fieldName(e.error.field), message: explain(e) })
      : t("report_error_plain", { message: explain(e) });
    body.replaceChildren();
    return;
  }
  const d = reports.data;
  if (!d) return;
  const total = d.total.rows[0];
  const range = t("report_range_of", { from: shortDay(reports.from), to: shortDay(reports.to) });
  status.setAttribute("role", "status");
  status.className = "report-status muted";
  status.textContent = `${range} · ${t("report_zone", { zone: d.total.timezone })} · ${d.total.campaigns.join(", ")}`;
  if (!total || (total.conversations === 0 && !total.messages_in && !total.messages_out)) {
    body.replaceChildren(h("div", { id: "report-empty", class: "card empty" }, t("report_no_data")));
    return;
  }
  body.replaceChildren(
    headline(total, d.surveys),
    h("div", { class: "report-grid" },
      volumeCard(d.hours, range),
      slaCard(d.days, d.queues, range),
      frtCard(total, range),
      csatCard(d.surveys, range),
      dispositionsCard(d.dispositions, range),
    ),
    queuesCard(d.queues),
    agentsCard(d.agents),
  );
}

// CSAT of the whole range, from the per-day rows: answers of 4–5 over answers.
function csatOverall(surveys) {
  const rows = surveys.rows.filter((r) => r.kind === "csat");
  const answered = rows.reduce((n, r) => n + r.answered, 0);
  const good = rows.reduce((n, r) => n + Math.round(((r.csat_pct || 0) * r.answered) / 100), 0);
  return { answered, pct: answered ? (100 * good) / answered : null };
}

function figure(key, label, value, text, note) {
  return h("div", { class: "figure", dataset: { figure: key, value: value ?? "" } },
    h("dt", {}, label), h("dd", {}, text, note ? h("small", {}, note) : null));
}

function headline(m, surveys) {
  const csat = csatOverall(surveys);
  const target = m.sla_target_pct == null ? null : t("fig_target", { pct: pct(m.sla_target_pct) });
  const below = (v) => m.sla_target_pct != null && v != null && v < m.sla_target_pct;
  const sla = (key, label, v) => {
    const node = figure(key, label, v, pct(v), target);
    if (below(v)) node.classList.add("below");
    return node;
  };
  return h("section", { class: "card headline", "aria-labelledby": "headline-h" },
    h("div", { class: "card-head" }, h("h2", { id: "headline-h" }, t("report_summary")), csvLink("summary", t("report_summary"))),
    h("dl", { class: "figures" },
      figure("conversations", t("fig_conversations"), m.conversations, num(m.conversations)),
      figure("answered", t("fig_answered"), m.answered, num(m.answered)),
      figure("abandoned", t("fig_abandoned"), m.abandoned, num(m.abandoned)),
      sla("sla_pct_of_answered", t("fig_sla_answered"), m.sla_pct_of_answered),
      sla("sla_pct_of_offered", t("fig_sla_offered"), m.sla_pct_of_offered),
      figure("frt", t("fig_frt"), m.frt_p50_s, span(m.frt_p50_s), t("fig_frt_p90", { t: span(m.frt_p90_s) })),
      figure("asa_s", t("fig_asa"), m.asa_s, span(m.asa_s)),
      figure("aht_s", t("fig_aht"), m.aht_s, span(m.aht_s)),
      figure("csat_pct", t("fig_csat"), csat.pct, pct(csat.pct), t("fig_csat_of", { n: num(csat.answered) })),
      figure("reopen_rate", t("fig_reopen"), m.reopen_rate, ratioPct(m.reopen_rate)),
      figure("repeat_24h_rate", t("fig_repeat"), m.repeat_24h_rate, ratioPct(m.repeat_24h_rate)),
    ));
}

function chartCard(id, title, csv, ...content) {
  return h("section", { id, class: "card chart-card", "aria-labelledby": `${id}-h` },
    h("div", { class: "card-head" }, h("h2", { id: `${id}-h` }, title), csv), ...content);
}

function emptyChart() {
  return h("p", { class: "muted chart-empty" }, t("report_chart_empty"));
}

function volumeCard(report, range) {
  const hours = Array.from({ length: 24 }, (_, i) => String(i).padStart(2, "0"));
  const by = Object.fromEntries(report.rows.map((r) => [r.group.hour, r]));
  const series = [
    { name: t("series_in"), class: "in", values: hours.map((x) => by[x]?.messages_in ?? 0) },
    { name: t("series_out"), class: "out", values: hours.map((x) => by[x]?.messages_out ?? 0) },
  ];
  const any = series.some((x) => x.values.some((v) => v > 0));
  const title = t("chart_volume");
  return chartCard("chart-volume", title, csvLink("summary", title, { group_by: "hour" }),
    any ? [legend(series), barChart({ title, description: t("chart_volume_desc", { range }), categories: hours, series, label: (x) => `${x} h` }),
      dataTable([t("axis_hour"), t("series_in"), t("series_out")], hours.map((x, i) => [`${x} h`, num(series[0].values[i]), num(series[1].values[i])]))]
      : emptyChart());
}

function slaCard(days, queues, range) {
  const all = daysOf(reports.from, reports.to);
  const by = Object.fromEntries(days.rows.map((r) => [r.group.day, r]));
  const series = [
    { name: t("series_sla_answered"), class: "sla-answered", values: all.map((x) => by[x]?.sla_pct_of_answered ?? null) },
    { name: t("series_sla_offered"), class: "sla-offered", values: all.map((x) => by[x]?.sla_pct_of_offered ?? null) },
  ];
  const targets = new Map();
  for (const q of queues.rows) if (q.sla_target_pct != null && q.sla_offered > 0) {
    const names = targets.get(q.sla_target_pct) || [];
    targets.set(q.sla_target_pct, [...names, q.group.queue]);
  }
  const lines = [...targets].map(([value, names]) => ({ value, label: t("target_line", { queue: names.join(", "), pct: pct(value) }) }));
  const any = series[0].values.some((v) => v != null);
  const title = t("chart_sla");
  return chartCard("chart-sla", title, csvLink("summary", title, { group_by: "day" }),
    any ? [legend(series, lines), barChart({ title, description: t("chart_sla_desc", { range }), categories: all, series, format: pct, tick: (v) => `${num(v)} %`, lines, label: shortDay, whole: false }),
      dataTable([t("col_day"), t("series_sla_answered"), t("series_sla_offered")], all.map((x, i) => [shortDay(x), pct(series[0].values[i]), pct(series[1].values[i])]))]
      : emptyChart());
}

function frtCard(total, range) {
  const buckets = total.frt_histogram || [];
  const categories = buckets.map((b) => b.bucket);
  const series = [{ name: t("series_conversations"), class: "frt", values: buckets.map((b) => b.count) }];
  const any = buckets.some((b) => b.count > 0);
  const title = t("chart_frt");
  return chartCard("chart-frt", title, csvLink("summary", title),
    any ? [barChart({ title, description: t("chart_frt_desc", { range }), categories, series, label: (b) => t(`frt_${b}`) }),
      dataTable([t("chart_frt"), t("series_conversations")], buckets.map((b) => [t(`frt_${b.bucket}`), num(b.count)]))]
      : emptyChart());
}

function csatCard(surveys, range) {
  const all = daysOf(reports.from, reports.to);
  const by = Object.fromEntries(surveys.rows.filter((r) => r.kind === "csat").map((r) => [r.group.day, r]));
  const values = all.map((x) => by[x]?.csat_pct ?? null);
  const title = t("chart_csat");
  const text = (i) => {
    const r = by[all[i]];
    return t("csat_point", { day: shortDay(all[i]), pct: pct(r.csat_pct), mean: num(r.mean_score, 2), answered: r.answered, sent: r.sent, rate: ratioPct(r.response_rate) });
  };
  const rows = all.filter((x) => by[x]).map((x) => { const r = by[x]; return [shortDay(x), pct(r.csat_pct), num(r.mean_score, 2), num(r.answered), num(r.sent), ratioPct(r.response_rate)]; });
  return chartCard("chart-csat", title, csvLink("surveys", title, { group_by: "day" }),
    values.some((v) => v != null)
      ? [lineChart({ title, description: t("chart_csat_desc", { range }), categories: all, values, pointTitle: text, label: shortDay }),
        dataTable([t("col_day"), t("col_csat"), t("col_mean"), t("col_answered"), t("col_sent"), t("col_rate")], rows)]
      : emptyChart());
}

function dispositionsCard(report, range) {
  const row = report.rows[0];
  const title = t("chart_dispositions");
  const csv = csvLink("dispositions", title);
  if (!row || !row.mix.length) return chartCard("chart-dispositions", title, csv, emptyChart());
  const items = row.mix.map((m) => ({ key: m.code, label: m.label, value: m.count, caption: `${num(m.count)} (${ratioPct(m.share)})`, text: `${m.label}: ${num(m.count)} (${ratioPct(m.share)})` }));
  const money = (v) => new Intl.NumberFormat(locale(), { maximumFractionDigits: 2 }).format(Number(v));
  return chartCard("chart-dispositions", title, csv,
    rankChart({ title, description: t("chart_dispositions_desc", { range }), items }),
    dataTable([title, t("series_conversations"), "%"], row.mix.map((m) => [m.label, num(m.count), ratioPct(m.share)])),
    row.promises ? h("p", { class: "promised", dataset: { amount: row.promised_amount } }, t("promised_total", { amount: money(row.promised_amount), n: num(row.promises) })) : null,
    row.by_date.length ? h("table", { class: "grid promises" },
      h("thead", {}, h("tr", {}, [t("col_promise_date"), t("col_promises"), t("col_amount")].map((x) => h("th", { scope: "col" }, x)))),
      h("tbody", {}, row.by_date.map((p) => h("tr", { dataset: { date: p.date } }, h("td", {}, shortDay(p.date)), h("td", {}, num(p.count)), h("td", {}, money(p.amount)))))) : null);
}

function measuresTable(id, title, report, key, columns) {
  const csv = csvLink(report.report, title);
  return h("section", { id, class: "card measures", "aria-labelledby": `${id}-h` },
    h("div", { class: "card-head" }, h("h2", { id: `${id}-h` }, title), csv),
    report.rows.length
      ? h("div", { class: "scroll" }, h("table", { class: "grid numbers-table" },
          h("thead", {}, h("tr", {}, h("th", { scope: "col" }, t(key === "queue" ? "col_queue" : "col_agent")), columns.map(([label]) => h("th", { scope: "col" }, t(label))))),
          h("tbody", {}, report.rows.map((r) => h("tr", { dataset: { [key]: r.group[key] } },
            h("th", { scope: "row" }, r.group[key] || t("no_queue")),
            columns.map(([, format]) => h("td", {}, format(r))))))))
      : emptyChart());
}

function queuesCard(report) {
  return measuresTable("table-queues", t("table_queues"), report, "queue", [
    ["col_conversations", (r) => num(r.conversations)], ["col_offered", (r) => num(r.offered)], ["col_answered_n", (r) => num(r.answered)],
    ["col_abandoned", (r) => num(r.abandoned)], ["col_sla_answered", (r) => pct(r.sla_pct_of_answered)], ["col_sla_offered", (r) => pct(r.sla_pct_of_offered)],
    ["col_target", (r) => pct(r.sla_target_pct)], ["col_frt_p50", (r) => span(r.frt_p50_s)], ["col_asa", (r) => span(r.asa_s)], ["col_aht", (r) => span(r.aht_s)],
  ]);
}

function agentsCard(report) {
  const answered = { ...report, rows: report.rows.filter((r) => r.group.agent) };
  return measuresTable("table-agents", t("table_agents"), answered, "agent", [
    ["col_answered_n", (r) => num(r.answered)], ["col_frt_p50", (r) => span(r.frt_p50_s)], ["col_frt_p90", (r) => span(r.frt_p90_s)],
    ["col_aht", (r) => span(r.aht_s)], ["col_transfers", (r) => num(r.transfers)], ["col_reopen", (r) => ratioPct(r.reopen_rate)],
  ]);
}

// ------------------------------------------------------------------------------ timers, keys

setInterval(() => {
  for (const node of document.querySelectorAll("[data-deadline]")) {
    const left = secondsUntil(node.dataset.deadline);
    if (node.dataset.kind === "offer") {
      if (left <= 0) node.closest("li")?.remove();
      else node.textContent = t("expires_in", { s: Math.ceil(left) });
    } else {
      node.textContent = windowText(node.dataset.deadline);
    }
  }
}, 1000);

document.addEventListener("keydown", deskShortcut);

// ------------------------------------------------------------------------------ boot

(async function boot() {
  setLang(lang);
  if (!location.pathname.endsWith("/invitation")) {
    try {
      const session = await api("GET", "/api/auth/session");
      if (session.kind === "session") return await start(session);
    } catch (error) {
      if (!(error instanceof ApiError) || error.status !== 401) toast(explain(error));
    }
  }
  render();
})();
