// A case: its facts, its evidence with links, adding evidence and closing it (the hold ends with it).
import { $, api, el, when } from "/static/lib.js";
import { showAllowed } from "/static/bodyworn.js";

const API = "/api/bodyworn";
const number = decodeURIComponent(location.pathname.split("/").pop());
const say = (text) => { $("#bw-case-status").textContent = text; };
const link = (i) => (i.kind === "bodyworn" ? el("a", { href: `/evidence/items/${i.ref_id}` }, i.ref_id) : i.ref_id);

async function load() {
  let c;
  try { c = await api(`${API}/cases/${encodeURIComponent(number)}`); } catch (err) { say(err.message); return; }
  $("#bw-case-title").textContent = `${c.number}: ${c.title}`;
  const rows = [["FIR", c.fir_number || "–"], ["Status", c.status + (c.closed_at ? ` (${when(c.closed_at)}: ${c.close_reason})` : "")],
    ["Officers", c.officers.join(", ") || "–"], ["Opened", `${when(c.created_at)} by ${c.created_by}`],
    ["Protection", c.hold_id ? `its evidence is held (hold ${c.hold_id})` : "none (closed, or nothing stored yet)"]];
  $("#bw-case-facts").replaceChildren(...rows.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
  $("#bw-case-items tbody").replaceChildren(...c.items.map((i) => el("tr", {},
    el("td", {}, i.kind.replaceAll("_", " ")), el("td", {}, link(i)), el("td", {}, when(i.added_at)),
    el("td", {}, i.added_by), el("td", {}, i.note))));
  await showAllowed();
  if (c.status !== "open") { $("#bw-case-add").hidden = true; $("#bw-case-close").hidden = true; }
}

for (const [id, path, done] of [["#bw-case-add", "items", "added"], ["#bw-case-close", "close", "closed"]]) {
  $(id).addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      await api(`${API}/cases/${encodeURIComponent(number)}/${path}`, { method: "POST",
        body: JSON.stringify(Object.fromEntries(new FormData(ev.target))) });
      ev.target.reset(); say(done); await load();
    } catch (err) { say(err.message); }
  });
}

load();
