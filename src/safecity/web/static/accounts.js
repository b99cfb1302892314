// The account pages: users (admins), your account, choosing a new password, setting up a second factor.
// Every request goes through lib.js's fetcher (credentials and the CSRF token).
import { $, api, el, when as at } from "/static/lib.js";

const when = (iso) => at(iso);
const post = (path, body) => api(path, { method: "POST", body: body === undefined ? undefined : JSON.stringify(body) });
const ORIGINS = { login: "sign-in", session: "web session", token: "another token", cli: "command line" };

/** Shows `text` in `node` (an error when `bad`), or clears it. */
function say(node, text = "", bad = false) {
  if (!node) return;
  node.textContent = text;
  node.classList.toggle("error", bad);
  node.classList.toggle("ok", !bad && !!text);
}

async function signOut() {
  await api("/api/logout", { method: "POST" }).catch(() => null);
  window.location.href = "/login";
}

// --- choosing a new password (the account page, and the page a one-time password leads to) -----------

function passwordForm() {
  const form = $("#password-form");
  if (!form) return;
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const message = $("#password-message");
    const current = $("#current-password");
    const fresh = $("#new-password");
    const again = $("#repeat-password");
    if (fresh.value !== again.value) { say(message, "the two new passwords differ", true); return; }
    try {
      await post("/api/account/password", { current_password: current.value, new_password: fresh.value });
    } catch (err) { say(message, err.message, true); return; }
    current.value = fresh.value = again.value = "";
    if ($("#password-page")) {
      const me = await api("/api/me");
      window.location.href = me.pending === "second_factor" ? "/account/second-factor" : "/";
    } else {
      say(message, "Password changed; your other browser sessions were signed out.");
    }
  });
}

// --- the second factor ------------------------------------------------------------------------------------

function showCodes(codes) {
  $("#sf-code-list").replaceChildren(...codes.map((c) => el("li", {}, el("code", {}, c))));
  $("#sf-codes").hidden = false;
}

async function secondFactor(me) {
  if (!$("#sf-setup")) return;
  const state = $("#sf-state"), start = $("#sf-start"), manage = $("#sf-manage"), message = $("#sf-message");
  const render = (on) => {
    state.textContent = on ? "On: sign-in asks for a code from your authenticator app."
      : "Off: sign-in asks for the password only.";
    start.hidden = on;
    if (manage) manage.hidden = !on;
  };
  render(me.second_factor);
  start.addEventListener("click", async () => {
    say(message);
    try {
      const setup = await post("/api/account/second-factor/setup");
      $("#sf-qr").setAttribute("src", `${setup.qr}?t=${Date.now()}`);
      $("#sf-secret").textContent = setup.secret;
      $("#sf-enrol").hidden = false;
      start.hidden = true;
      $("#sf-code").focus();
    } catch (err) { say(message, err.message, true); }
  });
  $("#sf-confirm").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    say(message);
    try {
      const out = await post("/api/account/second-factor/confirm", { code: $("#sf-code").value.trim() });
      $("#sf-enrol").hidden = true;
      showCodes(out.codes);
      render(true);
      const next = $("#sf-continue");
      if (next) next.hidden = false;
    } catch (err) { say(message, err.message, true); }
  });
  if (!manage) return;
  const password = () => $("#sf-password").value;
  manage.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    say(message);
    try { showCodes((await post("/api/account/second-factor/recovery-codes", { password: password() })).codes); }
    catch (err) { say(message, err.message, true); }
  });
  $("#sf-off")?.addEventListener("click", async () => {
    say(message);
    try {
      await post("/api/account/second-factor/disable", { password: password() });
      $("#sf-codes").hidden = true;
      render(false);
      say(message, "Second factor turned off.");
    } catch (err) { say(message, err.message, true); }
  });
}

// --- sessions and tokens ----------------------------------------------------------------------------------

function tokenRows(tokens, reload, { mine }) {
  return tokens.map((t) => el("tr", { "data-token-id": t.id },
    el("td", {}, t.name || (t.kind === "session" ? "browser" : "")), el("td", {}, t.kind),
    el("td", {}, ORIGINS[t.origin] || t.origin), el("td", {}, when(t.created_at)), el("td", {}, when(t.expires_at)),
    el("td", {}, when(t.last_used_at)),
    el("td", {}, t.current && mine ? el("span", { class: "muted" }, "this session")
      : el("button", { type: "button", class: "danger revoke", onclick: async () => {
        await api(`/api/tokens/${t.id}`, { method: "DELETE" });
        await reload();
      } }, "Revoke"))));
}

async function myTokens() {
  const table = $("#tokens");
  if (!table || $("#users-page")) return;
  const message = $("#tokens-message");
  const load = async () => {
    try { table.tBodies[0].replaceChildren(...tokenRows(await api("/api/tokens"), load, { mine: true })); }
    catch (err) { say(message, err.message, true); }
  };
  $("#new-token").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    say(message);
    const days = $("#token-days").value;
    try {
      const out = await post("/api/tokens", { name: $("#token-name").value, days: days ? Number(days) : null });
      $("#token-secret").textContent = out.token;
      $("#token-secret-box").hidden = false;
      await load();
    } catch (err) { say(message, err.message, true); }
  });
  await load();
}

// --- users (admins) ---------------------------------------------------------------------------------------

async function usersPage() {
  if (!$("#users-page")) return;
  const message = $("#users-message");
  const oneTime = (username, password) => {
    $("#one-time-user").textContent = username;
    $("#one-time-password").textContent = password;
    $("#one-time").hidden = false;
  };
  const act = async (fn) => {
    say(message);
    try { await fn(); } catch (err) { say(message, err.message, true); }
    await load();
  };
  const showTokens = async (username) => {
    $("#tokens-of").textContent = username;
    const reload = async () => {
      const rows = await api(`/api/tokens?username=${encodeURIComponent(username)}`);
      $("#user-token-table").tBodies[0].replaceChildren(...tokenRows(rows, reload, { mine: false }));
    };
    await reload();
    $("#user-tokens").hidden = false;
  };
  const load = async () => {
    const users = await api("/api/users");
    $("#users").tBodies[0].replaceChildren(...users.map((u) => {
      const name = encodeURIComponent(u.username);
      return el("tr", { "data-username": u.username, class: u.active ? "" : "disabled" },
        el("td", {}, u.username), el("td", {}, u.full_name), el("td", {}, u.role.replace("_", " ")),
        el("td", {}, u.active ? (u.must_change_password ? "must change password" : "active") : "disabled"),
        el("td", {}, u.second_factor ? "on" : "off"), el("td", {}, u.failed_logins),
        el("td", {}, when(u.last_login_at)),
        el("td", { class: "actions" },
          u.active
            ? el("button", { type: "button", class: "danger disable",
              onclick: () => act(() => post(`/api/users/${name}/disable`)) }, "Disable")
            : el("button", { type: "button", class: "secondary enable",
              onclick: () => act(() => post(`/api/users/${name}/enable`)) }, "Enable"),
          el("button", { type: "button", class: "secondary reset", onclick: () => act(async () => {
            const clear = u.second_factor && window.confirm(`Also remove ${u.username}'s authenticator app (a lost phone)?`);
            const out = await post(`/api/users/${name}/reset-password?clear_second_factor=${clear}`);
            oneTime(out.username, out.one_time_password);
          }) }, "Reset password"),
          el("button", { type: "button", class: "link tokens", onclick: () => showTokens(u.username) }, "Tokens")));
    }));
  };
  $("#new-user").addEventListener("submit", (ev) => {
    ev.preventDefault();
    act(async () => {
      const out = await post("/api/users", { username: $("#new-username").value, full_name: $("#new-full-name").value,
        role: $("#new-role").value });
      oneTime(out.username, out.one_time_password);
      $("#new-user").reset();
    });
  });
  await load();
}

(async () => {
  $("#sign-out")?.addEventListener("click", signOut);
  passwordForm();
  const me = await api("/api/me");
  await Promise.all([secondFactor(me), myTokens(), usersPage()]);
  document.body.dataset.ready = "yes";
})();
