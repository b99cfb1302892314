// The traffic officers' review queue: list violations, show their evidence, approve or reject.
import { $, api, el, when as at } from "/static/lib.js";

const list = $("#enf-list");
const detail = $("#enf-detail");
const form = $("#enf-filter");
let selected = null;

const when = (iso) => at(iso, "seconds");
const measure = (v) => (v.measured == null ? "" : `${v.measured} ${v.unit || ""}${v.limit != null ? ` (limit ${v.limit})` : ""}`);

function item(v, misreads = []) {
  return el("li", {
    class: `enf-item ${v.status}${selected === v.id ? " selected" : ""}${v.detail?.misread_of ? " enf-misread" : ""}`,
    tabindex: 0, onclick: () => show(v.id), onkeydown: (e) => e.key === "Enter" && show(v.id),
  }, el("strong", {}, v.plate || "no plate"), " · ", v.offence.replace(/_/g, " "), " ", measure(v),
     el("div", { class: "muted small" }, `${when(v.at)} · ${v.camera_id || ""} · ${v.status}`,
        v.occurrences > 1 ? ` · seen ${v.occurrences}×` : "",
        misreads.length ? ` · also read as ${misreads.map((m) => m.plate).join(", ")}` : "",
        v.detail?.misread_of ? " · possible misread of the one above" : ""));
}

async function load() {
  const params = new URLSearchParams();
  for (const [k, v] of new FormData(form)) if (v) params.set(k, v);
  const [rows, counts] = await Promise.all([api(`/api/violations?${params}`), api("/api/violations/counts")]);
  $("#enf-counts").textContent = Object.entries(counts).map(([k, n]) => `${k}: ${n}`).join(" · ");
  // A misread of a plate already in the queue sits under it, not as a new violation of its own.
  const shown = new Set(rows.map((v) => v.id));
  const under = new Map();
  for (const v of rows) {
    const head = v.detail?.misread_of;
    if (head && shown.has(head)) under.set(head, [...(under.get(head) || []), v]);
  }
  const heads = rows.filter((v) => !(v.detail?.misread_of && shown.has(v.detail.misread_of)));
  list.replaceChildren(...heads.flatMap((v) => [item(v, under.get(v.id)), ...(under.get(v.id) || []).map((m) => item(m))]));
  if (!rows.length) list.replaceChildren(el("li", { class: "muted" }, "Nothing here."));
}

function photo(ref, caption) {
  return el("figure", {}, el("img", { src: `/media/${ref}`, alt: caption, loading: "lazy" }), el("figcaption", {}, caption));
}

async function show(id) {
  selected = id;
  const v = await api(`/api/violations/${id}`);
  const ev = v.evidence || {};
  const photos = [
    ...(ev.frames_before || []).map((r) => photo(r, "before")),
    ...(ev.frames_after || []).map((r) => photo(r, "after")),
    ...(ev.plate_crop ? [photo(ev.plate_crop, "plate")] : []),
  ];
  const facts = [
    ["Offence", v.offence.replace(/_/g, " ")], ["Plate", v.plate || "not read"], ["When", when(v.at)],
    ["Camera", v.camera_id || "–"], ["Measured", measure(v) || "–"], ["Confidence", v.confidence.toFixed(2)],
    ["Clock source", ev.clock_source || "–"],
    ["Calibration", ev.calibration ? (ev.calibration.id != null ? `#${ev.calibration.id}` : "none recorded") : "–"],
    ["Section", ev.section ? `${ev.section.name}: ${ev.section.distance_m} m in ${ev.section.seconds} s` : "–"],
    ["Signal", ev.signal ? `${ev.signal.phase_seen || "?"} seen; controller said ${ev.signal.controller_phase || "nothing"}` : "–"],
    ["Status", v.status + (v.reviewed_by ? ` by ${v.reviewed_by}` : "")],
  ];
  const plate = el("input", { name: "plate", value: v.plate || "", maxlength: 20, "aria-label": "Plate as you read it" });
  const reason = el("input", { name: "reason", maxlength: 500, placeholder: "reason (needed to reject)", "aria-label": "Reason" });
  const status = el("span", { class: "muted", role: "status" });
  const decide = async (decision) => {
    try {
      const out = await api(`/api/violations/${id}/review`, { method: "POST",
        body: JSON.stringify({ decision, reason: reason.value, plate: plate.value || null }) });
      status.textContent = out.outcome;  // what the server did: a challan number, or why none
      await load();
    } catch (err) { status.textContent = err.message; }
  };
  detail.replaceChildren(
    el("h2", {}, `${v.plate || "No plate"} — ${v.offence.replace(/_/g, " ")}`),
    v.hold_reason ? el("p", { class: "enf-hold" }, v.hold_reason) : "",
    el("div", { class: "enf-photos" }, photos.length ? photos : el("p", { class: "muted" }, "No images.")),
    el("dl", { class: "enf-facts" }, facts.flatMap(([k, val]) => [el("dt", {}, k), el("dd", {}, val)])),
    (ev.readiness || []).length
      ? el("ul", { class: "enf-checks", "aria-label": "Court readiness" }, ...ev.readiness.map((c) =>
          el("li", { class: c.ok ? "ok" : "failed" }, `${c.ok ? "✓" : "✗"} ${c.check.replace(/_/g, " ")}: ${c.detail}`)))
      : "",
    v.status === "pending"
      ? el("div", { class: "enf-actions" }, plate, reason,
          el("button", { type: "button", onclick: () => decide("approve") }, "Approve"),
          el("button", { type: "button", class: "danger", onclick: () => decide("reject") }, "Reject"), status)
      : "",
  );
  load();
}

form.addEventListener("submit", (e) => { e.preventDefault(); load(); });
load();
setInterval(load, 15000);
