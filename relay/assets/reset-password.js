"use strict";
document.getElementById("form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const pw = document.getElementById("pw").value;
  if (pw !== document.getElementById("pw2").value) return sottoStatus("The passwords differ.", false);
  const token = sottoToken();
  if (!token) return sottoStatus("This link has no token. Open the link from the e-mail again.", false);
  const r = await sottoPost("/api/v1/auth/password/reset", { token, new_password: pw });
  if (r.ok) {
    sottoStatus("Your password is changed and every session was signed out. You can sign in now.", true);
    document.getElementById("form").remove();
  } else sottoStatus((r.problem && r.problem.detail) || "This link is invalid or has expired.", false);
});
