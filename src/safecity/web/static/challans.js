// Staff view of challans: list and filter, one challan's facts, its appeal and the committee's decision.
import { $, api, el, when } from "/static/lib.js";

const form = $("#chl-filter");
const rows = $("#chl-rows");
const detail = $("#chl-detail");
const day = (iso) => when(iso, "date");
const rs = (n) => (n == null ? "–" : `Rs ${n.toLocaleString()}`);

async function load() {
  const params = new URLSearchParams();
  for (const [k, v] of new FormData(form)) if (v) params.set(k, v);
  try {
    const [list, counts] = await Promise.all([api(`/api/challans?${params}`), api("/api/challans/counts")]);
    $("#chl-counts").textContent = Object.entries(counts).map(([k, n]) => `${k}: ${n}`).join(" · ");
    rows.replaceChildren(...list.map((c) => el("tr", { onclick: () => show(c.number) },
      el("td", {}, c.number), el("td", {}, c.plate), el("td", {}, c.owner), el("td", {}, c.offence.replace(/_/g, " ")),
      el("td", {}, day(c.issued_at)), el("td", {}, c.status), el("td", {}, rs(c.amount_due)),
      el("td", {}, el("a", { href: `/api/challans/${encodeURIComponent(c.number)}/notice` }, "PDF")))));
  } catch (err) { rows.replaceChildren(el("tr", {}, el("td", { colspan: 8 }, err.message))); }
}

async function show(number) {
  const c = await api(`/api/challans/${encodeURIComponent(number)}`);
  const appeal = c.status === "appealed" || c.status === "cancelled"
    ? await api(`/api/challans/${encodeURIComponent(number)}/appeal`).catch(() => null) : null;
  const reason = el("textarea", { rows: 3, placeholder: "reason for the decision", "aria-label": "Reason" });
  const members = el("input", { placeholder: "committee members, comma-separated", "aria-label": "Committee" });
  const status = el("span", { class: "muted", role: "status" });
  const decide = async (decision) => {
    try {
      await api(`/api/challans/${encodeURIComponent(number)}/appeal/decision`, { method: "POST", body: JSON.stringify({
        decision, reason: reason.value, committee: members.value.split(",").map((s) => s.trim()).filter(Boolean) }) });
      show(number); load();
    } catch (err) { status.textContent = err.message; }
  };
  detail.replaceChildren(el("div", { class: "chl-detail" },
    el("h2", {}, c.number),
    el("dl", {}, [["Plate", c.plate], ["Owner", `${c.owner} (${c.cnic})`], ["Address", c.address],
      ["Offence", c.offence.replace(/_/g, " ")], ["When", when(c.offence_at, "seconds")],
      ["Fine", rs(c.fine)], ["Due now", rs(c.amount_due)], ["Half price until", day(c.discount_until)],
      ["Due by", day(c.due_at)], ["Appeal by", day(c.appeal_until)], ["Clock day", c.day], ["Points", c.points],
      ["Status", c.status], ["Paid", c.paid_at ? `${rs(c.paid_amount)} on ${day(c.paid_at)}` : "–"],
      ["Verification", c.verification_code]].flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, String(v ?? "–"))])),
    c.evidence.photo ? el("img", { src: `/media/${c.evidence.photo}`, alt: "evidence", style: "max-width:100%" }) : "",
    appeal ? el("div", {}, el("h2", {}, `Appeal: ${appeal.status}`), el("p", {}, appeal.grounds),
      appeal.reason ? el("p", { class: "muted" }, `Decision: ${appeal.reason} (${appeal.committee.join(", ")})`) : "") : "",
    appeal && appeal.status === "pending" ? el("div", { class: "chl-decide" }, reason, members,
      el("div", {}, el("button", { type: "button", onclick: () => decide("upheld") }, "Uphold (cancel challan)"), " ",
        el("button", { type: "button", class: "secondary", onclick: () => decide("dismissed") }, "Dismiss"), " ", status)) : ""));
}

form.addEventListener("submit", (e) => { e.preventDefault(); load(); });
load();
