"use strict";
(async () => {
  const token = sottoToken();
  if (!token) return sottoStatus("This link has no token. Open the link from the e-mail again.", false);
  const r = await sottoPost("/api/v1/auth/verify-email", { token });
  if (r.ok) sottoStatus("Your e-mail address is verified. You can now sign in.", true);
  else sottoStatus((r.problem && r.problem.detail) || "This link is invalid or has expired.", false);
})();
