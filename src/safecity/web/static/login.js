// Signs in through the API; the server sets an HttpOnly session cookie.
document.getElementById("login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const error = document.getElementById("login-error");
  error.textContent = "";
  const body = {
    username: document.getElementById("username").value,
    password: document.getElementById("password").value,
  };
  const res = await fetch("/api/login", {
    method: "POST",
    headers: {
      "Content-Type": "application/json",
      "X-CSRF-Token": document.querySelector('meta[name="csrf-token"]')?.content || "",
    },
    body: JSON.stringify(body),
  });
  if (res.ok) {
    window.location.href = "/";
  } else {
    const data = await res.json().catch(() => ({}));
    error.textContent = data.detail || "Sign-in failed";
  }
});
