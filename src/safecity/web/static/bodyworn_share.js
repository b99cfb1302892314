// The recipient's page of a shared recording: the access code once, then the video with the recipient's
// name laid over it (view-only) or their watermarked copy to download. The link works in one browser only.
import { $, api, el, when } from "/static/lib.js";

const token = $("#bw-shared").dataset.token;
const say = (text) => { $("#bw-shared-status").textContent = text; };

async function open(code) {
  let share;
  try {
    share = await api(`/api/share/${encodeURIComponent(token)}/open`, { method: "POST", body: JSON.stringify({ code }) });
  } catch (err) {
    if (err.status === 422 && !code) { say("Enter the access code you were given with the link."); return; }
    say(err.message); return;
  }
  $("#bw-code").hidden = true; $("#bw-shared-view").hidden = false;
  say(`Shared with ${share.recipient} (${share.recipient_role}) until ${when(share.expires_at)}. Every view is recorded.`);
  $("#bw-overlay").textContent = `${share.recipient} · ${share.recipient_role} · ${when(Date.now(), "date")}`;
  $("#bw-shared-video").src = share.video;
  const it = share.item;
  $("#bw-shared-facts").textContent = `Recording ${it.id}, officer ${it.officer}, recorded ${when(it.recorded_at)}; ` +
    `SHA-256 of the original ${it.sha256}`;
  if (share.download) {
    const a = $("#bw-shared-download");
    a.hidden = false;
    if (share.copy_ready) a.href = share.download; else a.replaceChildren("Your watermarked copy is being prepared; reload in a few minutes.");
  }
}

$("#bw-code").addEventListener("submit", (ev) => { ev.preventDefault(); open(new FormData(ev.target).get("code")); });
open("").catch(() => {});
