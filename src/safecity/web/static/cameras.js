// The cameras page: the registry, and one camera's configuration as a form built from the configuration's
// JSON schema (/api/cameras/config-schema: titles, descriptions, enums, limits), saved as a new version;
// the server's 422 names each bad field and the message is shown beside it. Its version history below.
import { $, api, el, when } from "/static/lib.js";

const root = $("#cameras");
const CAN_WRITE = root.dataset.canWrite === "yes";
let schema = null;
let cameras = [];
let current = null;

/** The schema of a property with `anyOf: [x, null]` and `$ref`s resolved; says whether null is allowed. */
function resolve(prop) {
  let base = { ...prop };
  let nullable = false;
  if (prop.anyOf) {
    const options = prop.anyOf.filter((o) => o.type !== "null");
    nullable = options.length < prop.anyOf.length;
    base = { ...prop, ...options[0] };
    delete base.anyOf;
  }
  if (base.$ref) base = { ...schema.$defs[base.$ref.split("/").pop()], ...base };
  return { base, nullable };
}

const errorSlot = (field) => el("p", { class: "field-error", "data-error-for": field });
const pairs = (points) => (points || []).map((p) => p.join(",")).join(" ");
/** "10,20 30,40" → [[10, 20], [30, 40]]; a pair that is not two numbers goes as typed, for the server to name. */
const parsePairs = (text) => text.trim().split(/[\s;]+/).filter(Boolean).map((pair) => {
  const xy = pair.split(",").map((v) => Number(v));
  return xy.length === 2 && xy.every(Number.isFinite) ? xy : pair;
});

function settingInput(name, prop) {
  const { base, nullable } = resolve(prop);
  const field = `analysis.${name}`;
  const common = { name, id: `set-${name}`, "data-field": field, disabled: !CAN_WRITE };
  let input;
  if (base.enum) {
    input = el("select", common, nullable ? el("option", { value: "" }, "—") : "",
      ...base.enum.map((v) => el("option", { value: v }, v)));
  } else if (base.type === "boolean") {
    input = el("input", { ...common, type: "checkbox" });
  } else if (base.type === "number" || base.type === "integer") {
    input = el("input", { ...common, type: "number", step: "any",
      min: base.minimum ?? base.exclusiveMinimum, max: base.maximum ?? base.exclusiveMaximum,
      placeholder: nullable ? "empty: none" : "" });
  } else if (base.type === "array") {
    const size = (base.prefixItems || []).length;
    input = el("input", { ...common, placeholder: size === 4 ? "x, y, width, height" : "x, y" });
  } else {
    input = el("input", { ...common, maxlength: base.maxLength, placeholder: nullable ? "empty: none" : "" });
  }
  input.dataset.kind = base.enum ? "enum" : base.type;
  input.dataset.nullable = nullable ? "yes" : "no";
  const label = base.type === "boolean"
    ? el("label", { class: "cams-field check", for: common.id }, input, prop.title || name)
    : el("label", { class: "cams-field", for: common.id }, prop.title || name, input);
  label.append(el("span", { class: "hint" }, prop.description || ""), errorSlot(field));
  return label;
}

function fillSetting(input, value) {
  if (input.type === "checkbox") input.checked = Boolean(value);
  else if (Array.isArray(value)) input.value = value.join(", ");
  else input.value = value ?? "";
}

function readSetting(input) {
  if (input.type === "checkbox") return input.checked;
  const text = input.value.trim();
  if (text === "") return null;  // clears an optional setting; a required one is named by the server
  if (input.dataset.kind === "number" || input.dataset.kind === "integer") return Number(text);
  if (input.dataset.kind === "array") {
    const parts = text.split(/[\s,]+/).filter(Boolean).map(Number);
    return parts.every(Number.isFinite) ? parts : text;
  }
  return text;
}

function shapeRow(kind, item, index) {
  const defs = schema.$defs;
  const purposes = (kind === "zones" ? defs.ZonePurpose : defs.LinePurpose).enum;
  const geometry = kind === "zones" ? "polygon" : "points";
  const at = `${kind}.${index}`;
  const row = el("div", { class: "cams-shape", "data-kind": kind },
    el("label", { class: "cams-field" }, "Name",
      el("input", { name: "name", value: item.name || "", "data-field": `${at}.name`, disabled: !CAN_WRITE }),
      errorSlot(`${at}.name`)),
    el("label", { class: "cams-field" }, "Purpose",
      el("select", { name: "purpose", "data-field": `${at}.purpose`, disabled: !CAN_WRITE },
        ...purposes.map((p) => el("option", { value: p, selected: p === item.purpose }, p.replaceAll("_", " ")))),
      errorSlot(`${at}.purpose`)),
    el("label", { class: "cams-field" }, kind === "zones" ? "Corners" : "Ends",
      el("textarea", { name: geometry, "data-field": `${at}.${geometry}`, disabled: !CAN_WRITE,
        placeholder: kind === "zones" ? "0,300 640,300 640,360 0,360" : "100,500 900,520" }, pairs(item[geometry])),
      errorSlot(`${at}.${geometry}`)),
    CAN_WRITE ? el("button", { type: "button", class: "link", title: "Remove",
      onclick: () => { row.remove(); renumber(kind); } }, "remove") : "");
  return row;
}

/** Keeps each row's field paths equal to its position, so the server's `zones.2.polygon` finds row 2. */
function renumber(kind) {
  [...$(`#cams-${kind}`).children].forEach((row, index) => {
    for (const node of row.querySelectorAll("[data-field], [data-error-for]")) {
      for (const attr of ["data-field", "data-error-for"]) {
        const value = node.getAttribute(attr);
        if (value) node.setAttribute(attr, value.replace(/^(zones|lines)\.\d+/, `${kind}.${index}`));
      }
    }
  });
}

function readShapes(kind) {
  const geometry = kind === "zones" ? "polygon" : "points";
  return [...$(`#cams-${kind}`).children].map((row) => ({
    name: row.querySelector("[name=name]").value.trim(),
    purpose: row.querySelector("[name=purpose]").value,
    [geometry]: parsePairs(row.querySelector(`[name=${geometry}]`).value),
  }));
}

function clearErrors() {
  for (const slot of root.querySelectorAll(".field-error")) slot.textContent = "";
  for (const node of root.querySelectorAll("[aria-invalid]")) node.removeAttribute("aria-invalid");
}

/** Puts each message of a 422 beside its field (or the nearest enclosing one, with the rest of the path). */
function showErrors(fields) {
  for (const { field, message } of fields) {
    const parts = field.split(".");
    for (let n = parts.length; n > 0; n -= 1) {
      const path = parts.slice(0, n).join(".");
      const slot = root.querySelector(`[data-error-for="${CSS.escape(path)}"]`);
      if (!slot) continue;
      const rest = parts.slice(n).join(".");
      const text = (rest ? `${rest}: ` : "") + message;
      slot.textContent = slot.textContent ? `${slot.textContent}; ${text}` : text;
      root.querySelector(`[data-field="${CSS.escape(path)}"]`)?.setAttribute("aria-invalid", "true");
      break;
    }
  }
}

function drawList() {
  const find = $("#cams-find").value.trim().toLowerCase();
  const rows = cameras.filter((c) => !find || [c.id, c.name, c.district].some((v) => v.toLowerCase().includes(find)));
  $("#cams-table tbody").replaceChildren(...rows.map((c) => el("tr", {
    "data-camera": c.id, class: current && current.id === c.id ? "selected" : "", onclick: () => select(c.id) },
  el("td", {}, el("strong", {}, c.name), " ",
    el("a", { href: `/live/${encodeURIComponent(c.id)}`, title: `watch ${c.name} live`, onclick: (e) => e.stopPropagation() }, "▶ live"),
    el("div", { class: "muted small" }, c.id)),
  el("td", {}, c.kind), el("td", {}, c.district),
  el("td", {}, el("span", { class: `health ${c.health_state}` }, c.health_state.replaceAll("_", " "))),
  el("td", {}, `v${c.config_version}`))));
  $("#cams-status").textContent = `${rows.length} of ${cameras.length} camera(s)`;
}

function showCamera(camera) {
  current = camera;
  $("#cams-detail").hidden = false;
  $("#cams-title").textContent = camera.name;
  $("#cams-version").textContent = `configuration v${camera.config_version}`;
  $("#cams-subtitle").textContent = `${camera.id} · ${camera.kind} · ${camera.district} · ${camera.stream_url}`;
  for (const input of $("#cams-settings").querySelectorAll("[data-field]")) {
    fillSetting(input, camera.analysis[input.name]);
  }
  $("#cams-zones").replaceChildren(...camera.zones.map((z, i) => shapeRow("zones", z, i)));
  $("#cams-lines").replaceChildren(...camera.lines.map((ln, i) => shapeRow("lines", ln, i)));
  clearErrors();
  drawList();
}

const shown = (v) => (v == null ? "—" : JSON.stringify(v));

async function showHistory(cameraId) {
  const versions = await api(`/api/cameras/${encodeURIComponent(cameraId)}/versions`);
  $("#cams-history tbody").replaceChildren(...versions.map((v) => el("tr", { "data-version": v.version },
    el("td", {}, `v${v.version}`),
    el("td", {}, when(v.created_at)),
    el("td", {}, v.created_by),
    el("td", {}, v.note, v.changes.length
      ? el("ul", {}, ...v.changes.map((c) => el("li", {}, `${c.field}: ${shown(c.before)} → ${shown(c.after)}`)))
      : ""))));
}

async function select(cameraId) {
  const camera = await api(`/api/cameras/${encodeURIComponent(cameraId)}`);
  history.replaceState(null, "", `/cameras?camera=${encodeURIComponent(cameraId)}`);
  showCamera(camera);
  await showHistory(cameraId);
}

async function save(event) {
  event.preventDefault();
  if (!current) return;
  clearErrors();
  const status = $("#cams-save-status");
  const analysis = {};
  for (const input of $("#cams-settings").querySelectorAll("[data-field]")) analysis[input.name] = readSetting(input);
  const body = { analysis, zones: readShapes("zones"), lines: readShapes("lines") };
  status.className = "";
  status.textContent = "saving…";
  try {
    const camera = await api(`/api/cameras/${encodeURIComponent(current.id)}`,
      { method: "PATCH", body: JSON.stringify(body) });
    cameras = cameras.map((c) => (c.id === camera.id ? camera : c));
    const same = camera.config_version === current.config_version;
    showCamera(camera);
    await showHistory(camera.id);
    status.className = "ok";
    status.textContent = same ? "Nothing changed." : `Saved as configuration version ${camera.config_version}.`;
  } catch (err) {
    status.className = "bad";
    const fields = (err.data && err.data.fields) || [];
    showErrors(fields);
    status.textContent = fields.length
      ? `Not saved: ${fields.length} problem(s), marked beside the fields.` : `Not saved: ${err.message}`;
  }
}

async function start() {
  schema = await api("/api/cameras/config-schema");
  const props = schema.$defs.AnalysisSettings.properties;
  $("#cams-settings").replaceChildren(...Object.entries(props).map(([name, prop]) => settingInput(name, prop)));
  $("#cams-used-by").replaceChildren(...Object.entries(schema.used_by || {}).map(([what, where]) =>
    el("li", {}, el("strong", {}, what), `: ${where}`)));
  for (const kind of ["zones", "lines"]) {
    const add = $(`#cams-add-${kind === "zones" ? "zone" : "line"}`);
    add.hidden = !CAN_WRITE;
    add.addEventListener("click", () => {
      $(`#cams-${kind}`).append(shapeRow(kind, { purpose: kind === "zones" ? "roi" : "count" },
        $(`#cams-${kind}`).children.length));
    });
  }
  $("#cams-save").hidden = !CAN_WRITE;
  $("#cams-form").addEventListener("submit", save);
  $("#cams-find").addEventListener("input", drawList);
  cameras = await api("/api/cameras?limit=20000");
  drawList();
  const wanted = new URLSearchParams(location.search).get("camera");
  if (wanted) await select(wanted);
}

start().catch((err) => { $("#cams-status").textContent = `Could not load the cameras: ${err.message}`; });
