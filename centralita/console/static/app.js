// Centralita's console: sign-in, the agent's desk and the supervisor's wall.
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
            t("alert_sla_text", { queue: a.queue_name || "—", waited: duration(a.waited_s ?? 0), target: duration(a.sla_threshold_s ?? 0) }),
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
