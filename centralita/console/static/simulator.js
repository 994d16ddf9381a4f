// The demo's customer simulator: write as a WhatsApp or Instagram customer, see the answers.
import { t, lang, setLang, clock } from "/console/static/i18n.js";

const $ = (id) => document.getElementById(id);
const TICKS = { sent: "✓", delivered: "✓✓", read: "✓✓" };

function words() {
  document.documentElement.lang = lang;
  $("lang").textContent = t("language");
  $("sim-title").textContent = t("sim_title");
  $("sim-h").textContent = t("customer");
  $("l-channel").textContent = t("channel");
  $("l-customer").textContent = t("sim_customer");
  $("l-name").textContent = t("sim_name");
  $("l-text").textContent = t("sim_message");
  $("send-button").textContent = t("sim_send");
  $("sim-hint").textContent = t("sim_hint");
}

function toast(text) {
  const box = $("toast");
  box.textContent = text;
  box.className = "show error";
  setTimeout(() => (box.className = ""), 6000);
}

function render(thread) {
  const list = $("thread");
  const near = list.scrollHeight - list.scrollTop - list.clientHeight < 80;
  list.replaceChildren(
    ...thread.messages.map((m) => {
      const item = document.createElement("li");
      item.className = `entry ${m.side === "customer" ? "out" : "in"}`;
      item.dataset.side = m.side;
      const text = document.createElement("div");
      text.className = "text";
      text.textContent = m.text;
      const meta = document.createElement("div");
      meta.className = "meta";
      meta.textContent = clock(m.at);
      if (m.state) {
        const tick = document.createElement("span");
        tick.className = `tick ${m.state}`;
        tick.dataset.state = m.state;
        tick.textContent = ` ${TICKS[m.state] || ""} ${t(m.state)}`;
        meta.append(tick);
      }
      item.append(text, meta);
      return item;
    }),
  );
  if (near) list.scrollTop = list.scrollHeight;
}

async function refresh() {
  const customer = $("customer").value.trim();
  if (!customer) return;
  const response = await fetch(`/demo/api/threads/${$("channel").value}/${encodeURIComponent(customer)}`);
  if (response.ok) render(await response.json());
}

$("send").addEventListener("submit", async (event) => {
  event.preventDefault();
  const body = { channel: $("channel").value, customer: $("customer").value.trim(), name: $("name").value.trim() || "Cliente", text: $("text").value.trim() };
  if (!body.text) return;
  const response = await fetch("/demo/api/messages", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  const data = await response.json().catch(() => null);
  if (!response.ok) return toast(data?.error?.message || t("error_generic"));
  $("text").value = "";
  render(data);
});
$("text").addEventListener("keydown", (e) => { if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); $("send").requestSubmit(); } });
$("channel").addEventListener("change", refresh);
$("customer").addEventListener("change", refresh);
$("lang").addEventListener("click", () => { setLang(lang === "es" ? "en" : "es"); words(); refresh(); });

setLang(lang);
words();
refresh();
setInterval(refresh, 1000);
