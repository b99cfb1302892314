// The citizens' portal: look up by plate and CNIC, see the evidence, pay, appeal, download the notice.
import { $, el, send, when } from "/static/lib.js";

let token = "";
const status = $("#portal-status");
const results = $("#portal-results");
const rs = (n) => `Rs ${Number(n).toLocaleString()}`;
const day = (iso) => when(iso, "date");

async function call(path, options = {}) {
  const res = await send(path, { ...options,
    headers: { "Content-Type": "application/json", "X-Portal-Token": token, ...(options.headers || {}) } });
  const data = await res.json().catch(() => null);
  if (!res.ok) throw new Error((data && (data.detail + (data.hint ? " — " + data.hint : ""))) || res.statusText);
  return data;
}

function challanCard(c) {
  const q = `?t=${encodeURIComponent(token)}`;
  const base = `/api/portal/challans/${encodeURIComponent(c.number)}`;
  const note = el("p", { class: "muted", role: "status" });
  const open = c.status === "unpaid";
  // Payments are recorded only when the bank or wallet confirms them to the traffic police, never here.
  const pay = el("div", { class: "portal-pay" }, el("strong", {}, `Pay ${rs(c.amount_due)} today`),
    el("p", {}, "PSID (payment slip id): ", el("strong", {}, c.psid || c.number)),
    el("p", { class: "muted" }, "Pay it by 1Bill in any bank or wallet app (JazzCash, Easypaisa), at any bank " +
      "branch, or by Raast with the QR code on your notice. This page shows the challan as paid once the bank confirms it."));
  const appeal = el("form", {}, el("strong", {}, "Appeal"),
    el("textarea", { name: "grounds", rows: 3, required: true, minlength: 10, placeholder: "why the challan is wrong" }),
    el("input", { name: "contact", maxlength: 200, placeholder: "phone or e-mail" }),
    el("button", { type: "submit", class: "secondary" }, "Send appeal"));
  appeal.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      await call(`${base}/appeal`, { method: "POST",
        body: JSON.stringify({ grounds: appeal.grounds.value, contact: appeal.contact.value }) });
      note.textContent = "Appeal received; the clock is paused until the committee decides."; lookup();
    } catch (err) { note.textContent = err.message; }
  });
  const measured = c.measured == null ? "" : `${c.measured} ${c.unit}${c.limit != null ? ` (limit ${c.limit})` : ""}`;
  return el("article", { class: "portal-challan" },
    el("h3", {}, `${c.number} · ${c.offence_label}`),
    el("p", { class: "portal-due" }, open || c.status === "appealed" ? `Due today: ${rs(c.amount_due)}` : c.status.toUpperCase()),
    el("dl", {}, [["Vehicle", c.plate], ["When", when(c.offence_at, "seconds")], ["Measured", measured || "–"],
      ["Fine", rs(c.fine)], ["Half price until", day(c.discount_until)], ["Due by", day(c.due_at)],
      ["Appeal by", day(c.appeal_until)], ["Status", c.status],
      ["Appeal", c.appeal ? `${c.appeal.status}${c.appeal.reason ? ": " + c.appeal.reason : ""}` : "–"]]
      .flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)])),
    el("div", { class: "portal-photos" }, c.evidence.map((ref) =>
      el("img", { src: `${base}/evidence/${encodeURIComponent(ref)}${q}`, alt: "evidence", loading: "lazy" }))),
    el("div", { class: "portal-actions" }, el("a", { href: `${base}/notice${q}` }, "Download the notice (PDF)"),
      open ? pay : "", open && !c.appeal ? appeal : ""),
    note);
}

async function lookup() {
  const form = $("#portal-lookup");
  status.textContent = "Looking up…";
  try {
    const data = await call("/api/portal/lookup", { method: "POST",
      body: JSON.stringify({ plate: form.plate.value, cnic: form.cnic.value }) });
    token = data.token;
    status.textContent = data.challans.length ? `${data.challans.length} challan(s) found.`
      : "No challans for this plate and CNIC.";
    results.replaceChildren(...data.challans.map(challanCard));
  } catch (err) { status.textContent = err.message; results.replaceChildren(); }
}

$("#portal-lookup").addEventListener("submit", (e) => { e.preventDefault(); lookup(); });

const code = new URLSearchParams(location.search).get("verify");
if (code) {
  const box = $("#portal-verify-result");
  box.hidden = false;
  fetch(`/api/portal/verify/${encodeURIComponent(code)}`).then(async (res) => {
    const data = await res.json();
    box.replaceChildren(el("h2", {}, res.ok ? "This notice is genuine" : "Notice not recognised"),
      el("p", {}, res.ok ? `${data.number} · ${data.plate} · ${data.offence.replace(/_/g, " ")} on ${when(data.offence_at, "seconds")} · ${rs(data.fine)} · ${data.status}`
        : data.detail + (data.hint ? " — " + data.hint : "")));
  });
}
