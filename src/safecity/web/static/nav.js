// The navigation bar on every page: hides links the signed-in role may not use, names the user, signs out.
(async () => {
  const res = await fetch("/api/ui/me", { credentials: "same-origin" }).catch(() => null);
  const logout = document.getElementById("logout");
  if (!res || !res.ok) {
    // Signed out (e.g. the public portal): only public links stay, and there is nobody to sign out.
    document.querySelectorAll("#nav a[data-perm]").forEach((a) => { if (a.dataset.perm) a.hidden = true; });
    if (logout) logout.hidden = true;
    return;
  }
  const me = await res.json();
  window.safecityMe = me;
  document.dispatchEvent(new CustomEvent("safecity:me", { detail: me }));
  document.querySelectorAll("#nav a[data-perm]").forEach((a) => {
    const need = a.dataset.perm;
    a.hidden = !!need && !need.split("|").some((p) => me.permissions.includes(p));
  });
  const who = document.getElementById("whoami");
  if (who) who.textContent = `${me.username} (${me.role})`;
  if (logout) logout.onclick = async () => {
    const csrf = document.querySelector('meta[name="csrf-token"]')?.content || "";
    await fetch("/api/logout", { method: "POST", credentials: "same-origin", headers: { "X-CSRF-Token": csrf } });
    location.href = "/login";
  };
})();
