// Signs in through the API; the server sets an HttpOnly session cookie.
document.getElementById("login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const error = document.getElementById("login-error");
  error.textContent = "";
  const body = {
    username: document.getElementById("username").value,
    password: document.getElementById("password").value,
  };
  const codeRow = document.getElementById("code-row");
  if (!codeRow.hidden) body.code = document.getElementById("code").value.trim();
  const res = await fetch("/api/login", {
    method: "POST",
    headers: {
      "Content-Type": "application/json",
      "X-CSRF-Token": document.querySelector('meta[name="csrf-token"]')?.content || "",
    },
    body: JSON.stringify(body),
  });
  const data = await res.json().catch(() => ({}));
  if (res.ok) {
    // A one-time password is changed before anything else.
    window.location.href = data.must_change_password ? "/account/password" : "/";
  } else {
    if (data.error === "second_factor_required") {
      codeRow.hidden = false;
      document.getElementById("code").focus();
    }
    error.textContent = data.detail ? data.detail + (data.hint ? ` (${data.hint})` : "") : "Sign-in failed";
  }
});
