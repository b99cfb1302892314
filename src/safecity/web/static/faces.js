// The /watchlists page: entries with photos, requests (maker), approvals (checker), match decisions,
// officers' outcomes, rejection stats, notices to case officers and search by photo.
import { api, el, $, send, when as at, fromZoneInput } from "/static/lib.js";

const root = document.getElementById("faces");
const flag = (name) => root.dataset[name] === "yes";
const me = root.dataset.me;
const media = (ref) => `/media/${encodeURIComponent(ref)}`;
const when = (iso) => (iso ? at(iso, "seconds") : "");
const pct = (x) => `${Math.round(x * 100)}%`;

function say(id, text, isError = false) {
  const node = document.getElementById(id);
  if (!node) return;
  node.textContent = text;
  node.classList.toggle("error", isError);
}

/** Posts a multipart form (photos); `api` from lib.js sends JSON only. */
async function postForm(path, data) {
  const res = await send(path, { method: "POST", body: data });
  if (res.status === 401) { window.location.href = "/login"; throw new Error("signed out"); }
  const body = await res.json().catch(() => null);
  if (!res.ok) throw new Error((body && (body.detail + (body.hint ? " — " + body.hint : ""))) || res.statusText);
  return body;
}

const post = (path, body) => api(path, { method: "POST", body: JSON.stringify(body) });

// --- entries ----------------------------------------------------------------------------------------

async function loadEntries() {
  if (!flag("canRead")) return;
  const status = $("#entry-status").value;
  try {
    const entries = await api(`/api/faces/entries${status ? `?status=${status}` : ""}`);
    const rows = entries.map(entryRow);
    $("#entries tbody").replaceChildren(...rows);
    say("entries-status", entries.length ? "" : "no entries");
  } catch (err) {
    say("entries-status", err.message, true);
  }
}

function entryRow(entry) {
  const actions = el("td", { class: "actions" });
  if (entry.status === "pending" && flag("canApprove")) {
    if (entry.requested_by.toLowerCase() === me.toLowerCase()) {
      actions.append(el("span", { class: "muted" }, "needs another officer's approval"));
    } else {
      actions.append(el("button", { type: "button", onclick: () => decideEntry(entry, "approve") }, "Approve"));
      actions.append(el("button", { type: "button", class: "secondary", onclick: () => decideEntry(entry, "refuse") }, "Refuse"));
    }
  }
  if (entry.status === "pending" || entry.status === "approved") {
    actions.append(el("button", { type: "button", class: "secondary", onclick: () => decideEntry(entry, "remove") }, "Remove"));
  }
  const scope = entry.category === "event"
    ? ` · ${entry.event_cameras.join(", ")} · ${when(entry.event_start)} – ${when(entry.event_end)}` : "";
  return el("tr", { id: `entry-${entry.id}` },
    el("td", {}, entry.purged_at
      ? el("div", { class: "muted" }, `photos and face data deleted ${when(entry.purged_at)} (closed entry past its retention)`)
      : entry.photos.map((p) => el("img", { class: "face", src: media(p.media_ref), alt: `photo of ${entry.name}` }))),
    el("td", {}, entry.name, el("div", { class: "muted" }, entry.notes)),
    el("td", {}, entry.category + scope),
    el("td", { class: `status-${entry.status}` }, entry.active ? "active" : entry.status,
      entry.closed_reason ? el("div", { class: "muted" }, entry.closed_reason) : ""),
    el("td", {}, entry.legal_basis),
    el("td", {}, entry.requested_by, el("div", { class: "muted" }, entry.approved_by ? `approved by ${entry.approved_by}` : "not approved")),
    el("td", {}, when(entry.expires_at)),
    actions);
}

async function decideEntry(entry, verb) {
  let body;
  if (verb !== "approve") {
    const reason = window.prompt(`Why ${verb} "${entry.name}"? (written to the audit log)`);
    if (!reason) return;
    body = { reason };
  } else if (!window.confirm(`Approve "${entry.name}" (${entry.legal_basis})? It will be matched on the cameras at once.`)) {
    return;
  }
  try {
    await api(`/api/faces/entries/${entry.id}/${verb}`, { method: "POST", body: body ? JSON.stringify(body) : undefined });
    say("entries-status", `${entry.name}: ${verb} done`);
  } catch (err) {
    say("entries-status", err.message, true);
  }
  loadEntries();
}

async function requestEntry(event) {
  event.preventDefault();
  const form = event.target;
  const data = new FormData(form);
  for (const name of ["threshold", "event_start", "event_end", "event_cameras", "case_officer", "notes"]) {
    if (!data.get(name)) data.delete(name);
  }
  // The fields are wall-clock time in the display zone (as labelled); the API takes UTC instants.
  for (const name of ["expires_at", "event_start", "event_end"]) {
    const moment = data.get(name) && fromZoneInput(data.get(name));
    if (moment) data.set(name, moment.toISOString());
  }
  say("request-status", "checking the photos…");
  try {
    const entry = await postForm("/api/faces/entries", data);
    say("request-status", `requested: ${entry.name} waits for another officer's approval`);
    form.reset();
    showEventFields();
    loadEntries();
  } catch (err) {
    say("request-status", err.message, true);
  }
}

function showEventFields() {
  const category = $("#entry-category");
  if (category) $("#event-fields").hidden = category.value !== "event";
}

// --- matches ----------------------------------------------------------------------------------------

async function loadMatches() {
  try {
    const [pending, confirmed] = await Promise.all([
      api("/api/faces/matches?status=pending&limit=50"), api("/api/faces/matches?status=confirmed&limit=50")]);
    const open = [...pending, ...confirmed.filter((m) => !m.outcome)];
    const cards = open.map(matchCard);
    $("#matches").replaceChildren(...(cards.length ? cards : [el("p", { class: "muted" }, "nothing waiting")]));
  } catch (err) {
    $("#matches").replaceChildren(el("p", { class: "error" }, err.message));
  }
}

function matchCard(match) {
  const actions = el("div", { class: "actions" });
  if (flag("canAct") && match.status === "pending") {
    const reason = el("input", { placeholder: "why (needed to reject)", maxlength: 500 });
    actions.append(
      el("button", { type: "button", onclick: () => decideMatch(match, "confirm", reason.value) }, "Same person: confirm"),
      el("button", { type: "button", class: "secondary", onclick: () => decideMatch(match, "reject", reason.value) }, "Not the person: reject"),
      reason);
  } else if (flag("canAct") && match.status === "confirmed") {
    const note = el("input", { placeholder: "officer's note", maxlength: 1000 });
    for (const [value, label] of [["identity_confirmed", "Identity confirmed"], ["not_the_person", "Someone else"], ["not_found", "Not found"]]) {
      actions.append(el("button", { type: "button", class: "secondary", onclick: () => reportOutcome(match, value, note.value) }, label));
    }
    actions.append(note);
  }
  return el("div", { class: `match ${match.category}` },
    el("div", { class: "photos" },
      match.crop_ref ? el("img", { class: "face live", src: media(match.crop_ref), alt: "live crop" }) : "",
      match.photo_refs.map((ref) => el("img", { class: "face", src: media(ref), alt: "watch-list photo" }))),
    el("div", {},
      el("strong", {}, match.entry_name), ` · ${match.category} · ${pct(match.similarity)}`,
      el("div", { class: "muted" }, `${match.camera_id || "?"} · ${when(match.seen_at)} · ${match.status}`),
      match.category === "missing" ? el("div", {}, `Missing person: case officer ${match.case_officer} notified`) : "",
      el("div", { class: "muted" }, match.legal_basis)),
    actions);
}

async function decideMatch(match, decision, reason) {
  try {
    await post(`/api/faces/matches/${match.id}/decision`, { decision, reason });
  } catch (err) {
    window.alert(err.message);
  }
  refreshDecisions();
}

async function reportOutcome(match, outcome, note) {
  try {
    await post(`/api/faces/matches/${match.id}/outcome`, { outcome, note });
  } catch (err) {
    window.alert(err.message);
  }
  refreshDecisions();
}

// --- stats and notices --------------------------------------------------------------------------------

async function loadStats() {
  const stats = await api("/api/faces/stats/rejections").catch(() => []);
  $("#rejections tbody").replaceChildren(...stats.map((s) => el("tr", {},
    el("td", {}, s.entry_name || s.entry_id), el("td", {}, s.camera_id || ""), el("td", {}, s.matches),
    el("td", {}, s.rejected), el("td", {}, s.confirmed), el("td", {}, s.misidentified), el("td", {}, pct(s.rejection_rate)))));
}

async function loadNotices() {
  const notices = await api("/api/faces/notifications?unacknowledged=true").catch(() => []);
  $("#notices").replaceChildren(...notices.map((n) => el("li", {},
    el("strong", {}, `To ${n.recipient}: `), n.message, " ",
    flag("canAct") ? el("button", { type: "button", class: "link", onclick: () => acknowledge(n) }, "mark read") : "")));
}

async function acknowledge(notice) {
  await post(`/api/faces/notifications/${notice.id}/ack`, {}).catch((err) => window.alert(err.message));
  loadNotices();
}

function refreshDecisions() {
  loadMatches();
  loadStats();
  loadNotices();
}

// --- search -------------------------------------------------------------------------------------------

async function search(event) {
  event.preventDefault();
  const form = event.target;
  const data = new FormData(form);
  const where = data.get("where");
  data.delete("where");
  say("search-status", "searching…");
  try {
    if (where === "footage") {
      const hits = await postForm("/api/faces/footage-search", data);
      $("#candidates tbody").replaceChildren(...hits.map((h) => el("tr", {},
        el("td", {}, el("img", { class: "face", src: media(h.crop_ref), alt: "stored crop" })),
        el("td", {}, `${h.camera_id || "?"} · ${when(h.seen_at)}`), el("td", {}, pct(h.similarity)), el("td", {}, ""))));
      say("search-status", `${hits.length} snapshot(s) found; the search was audited`);
    } else {
      const found = await postForm("/api/faces/search", data);
      $("#candidates tbody").replaceChildren(...found.map((c) => el("tr", {},
        el("td", {}, c.photo_refs.slice(0, 2).map((ref) => el("img", { class: "face", src: media(ref), alt: c.name }))),
        el("td", {}, `${c.name} (${c.category})`), el("td", {}, pct(c.similarity)),
        el("td", {}, c.match ? "match" : "below threshold"))));
      say("search-status", found.length ? "the search was audited" : "no active entries");
    }
  } catch (err) {
    say("search-status", err.message, true);
  }
}

// --- start -------------------------------------------------------------------------------------------

if (flag("canRead")) $("#entry-status").addEventListener("change", loadEntries);
if (flag("canRequest")) {
  $("#entry-form").addEventListener("submit", requestEntry);
  $("#entry-category").addEventListener("change", showEventFields);
}
if (flag("canSearch")) $("#search-form").addEventListener("submit", search);
loadEntries();
refreshDecisions();
setInterval(refreshDecisions, 15000);
