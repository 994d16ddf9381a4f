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
    await Promise.all([loadStats(), loadAgents()]);
  }
  render();
}

// ------------------------------------------------------------------------------ the desk: live

function connect() {
  if (state.socket && state.socket.readyState <= 1) return;
  const socket = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws/agent`);
  state.socket = socket;
  socket.addEventListener("open", async () => {
    state.live = true;
    state.retry = 0;
    // Back after a drop: the database holds every message; read what we may have missed.
    await loadConversations();
    if (state.current) await openConversation(state.current, { keepScroll: true });
    renderLive();
  });
  socket.addEventListener("message", (event) => onFrame(JSON.parse(event.data)));
  socket.addEventListener("close", (event) => {
    state.live = false;
    renderLive();
    if (!state.session || event.code === 4401) {
      if (event.code === 4401) { state.session = null; render(); toast(t("unauthenticated")); }
      return;
    }
    const wait = Math.min(10000, 500 * 2 ** state.retry++);
    setTimeout(connect, wait);
  });
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
        h("p", { class: "hint" }, t("shortcuts")),
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
    h("div", { class: "wrap" }, closeForm(), transferForm()),
  );
  renderWindowBanner();
  renderTimeline();
  renderComposer();
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
  list.replaceChildren(
    ...state.detail.timeline.map((entry) =>
      h(
        "li",
        { class: `entry ${entry.direction} ${entry.kind}`, dataset: { message: entry.id } },
        entry.direction === "note" ? h("span", { class: "tag" }, t("note_tag")) : null,
        h("div", { class: "text" }, entryBody(entry)),
        h(
          "div",
          { class: "meta" },
          h("time", { datetime: entry.at }, clock(entry.at)),
          " ",
          entry.channel,
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
  if (!value) return;
  text.disabled = true;
  const sent = await sendReply({ text: value });
  text.disabled = false;
  if (sent) { const again = document.getElementById("reply"); if (again) { again.value = ""; again.focus(); } }
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
        const closed = await attempt(() => api("POST", `/api/conversations/${state.current}/close`, { disposition }));
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
    h("button", { type: "submit", id: "close" }, t("close")),
  );
}

function transferForm() {
  const queues = (state.options?.queues || []).filter((q) => q.id !== state.detail?.queue?.id);
  if (!queues.length) return null;
  const picker = h("select", { id: "transfer-queue" }, queues.map((q) => h("option", { value: q.id }, q.name)));
  return h(
    "form",
    {
      class: "card",
      onsubmit: async (event) => {
        event.preventDefault();
        const moved = await attempt(() => api("POST", `/api/conversations/${state.current}/transfer`, { queue_id: picker.value }));
        if (moved) { toast(t("transferred_ok"), "ok"); state.current = null; state.detail = null; await loadConversations(); renderList(); renderConversation(); }
      },
    },
    h("h3", {}, t("transfer_title")),
    field(t("transfer_to"), picker),
    h("button", { type: "submit" }, t("transfer")),
  );
}

// ------------------------------------------------------------------------------ the wall

async function loadStats() {
  const stats = await attempt(() => api("GET", "/api/queues/stats"), { quiet: true });
  if (stats) state.stats = stats;
}

function wallView() {
  const tiles = h("div", { id: "tiles", class: "tiles", "aria-label": t("queues") });
  const view = h(
    "div",
    {},
    header(h("span", { class: "who" }, state.session.agent?.name || state.session.workspace)),
    h(
      "main",
      { id: "main", class: "wall" },
      h("h1", {}, t("wall_title")),
      tiles,
      h("div", { class: "wall-grid" },
        h("section", { id: "agents", class: "card", "aria-labelledby": "agents-h" }),
        h("section", { id: "search", class: "card", "aria-labelledby": "search-h" }, searchForm(), h("div", { id: "results" })),
      ),
      h("section", { id: "reader", class: "card reader", hidden: true }),
    ),
  );
  queueMicrotask(() => { renderTiles(); renderAgents(); search(); });
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
        ),
        notOfferedLine(q),
      ),
    ),
  );
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

async function loadAgents() {
  const list = await attempt(() => api("GET", "/api/agents"), { quiet: true });
  if (list) state.agents = list.items;
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

let wallTick = 0;
setInterval(async () => {
  if (state.session && state.session.role !== "agent" && document.getElementById("tiles")) {
    await loadStats();
    renderTiles();
    if (wallTick++ % 3 === 0) { await loadAgents(); renderAgents(); }
  }
}, 1000);

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

document.addEventListener("keydown", (event) => {
  if (!event.altKey) return;
  if (event.key === "a" || event.key === "A") {
    const first = [...state.offers.values()][0];
    if (first) { event.preventDefault(); answer(first, true); }
  } else if (event.key === "n" || event.key === "N") {
    const box = document.getElementById("reply");
    if (box) { event.preventDefault(); box.focus(); }
  }
});

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
