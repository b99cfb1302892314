// The audit log for auditors: newest entries, filters, and a check of the keyed chain and its checkpoints.
import { $, api, el, when } from "/static/lib.js";

async function load() {
  const params = new URLSearchParams({ limit: "200" });
  if ($("#actor").value) params.set("actor", $("#actor").value);
  if ($("#action").value) params.set("action", $("#action").value);
  const rows = await api(`/api/audit?${params}`);
  $("#audit tbody").replaceChildren(...rows.map((r) => el("tr", {},
    el("td", {}, r.seq), el("td", {}, when(r.at, "seconds")), el("td", {}, r.actor),
    el("td", {}, r.action), el("td", {}, r.target), el("td", { class: "small muted", "data-raw": "" }, JSON.stringify(r.detail)))));
}

$("#filter").onsubmit = (e) => { e.preventDefault(); load(); };
$("#verify").onclick = async () => {
  const out = $("#verify-result");
  out.textContent = "checking…";
  try {
    const report = await api("/api/audit/verify");
    out.className = report.ok ? "badge on" : "badge bad";
    out.textContent = report.ok
      ? `chain intact (${report.checked} entries, ${report.checkpoints} checkpoints)`
      : `TAMPERED${report.first_bad_seq ? ` from row ${report.first_bad_seq}` : ""}: ${report.problems.join("; ")}`;
    $("#verify-notes").replaceChildren(...report.notes.map((n) => el("li", {}, n)));
  } catch (err) { out.textContent = err.message; }
};
load().then(() => { document.body.dataset.ready = "yes"; });
