// Boot: load the WebAssembly, then route: an e-mailed link (`?action=verify-email` or
// `?action=reset-password`, token in the `#token=` fragment), else the start screen;
// login → passphrase → chat.

import { Relay, type Session, errorText, init } from "./api.js";
import { Chat } from "./chat.js";
import { byId, h, replace } from "./dom.js";
import { type StartOptions, showStart, tokenFrom } from "./start.js";
import { showUnlock } from "./unlock.js";

const root = byId("app");

/** The relay's base URL: the parent of `/app/` (same origin, works behind a path prefix too). */
function relayBase(): string {
  return new URL("../", location.href).href.replace(/\/$/, "");
}

function start(relay: Relay, opts: Omit<StartOptions, "onLoggedIn"> = {}): void {
  document.title = "Sotto";
  showStart(root, relay, {
    ...opts,
    onLoggedIn: (user) => {
      void showUnlock(root, relay, {
        ...user,
        onSession: (session) => chat(relay, session),
        onCancel: () => start(relay),
      }).catch((e: unknown) => start(relay, { notice: { level: "error", text: errorText(e) } }));
    },
  });
}

function chat(relay: Relay, session: Session): void {
  document.title = `Sotto · ${session.username}`;
  const c = new Chat(root, session, relay, (notice) => start(new Relay(relayBase()), notice ? { notice: { level: "info", text: notice } } : {}));
  c.start();
  // For tests and the curious: who this page is.
  root.dataset.userId = session.userId;
  root.dataset.deviceId = session.deviceId;
}

async function boot(): Promise<void> {
  replace(root, h("p", { class: "center muted", testid: "loading", text: "Loading…" }));
  await init({ module_or_path: new URL("./pkg/sotto_wasm_bg.wasm", import.meta.url) });
  const relay = new Relay(relayBase());
  const params = new URLSearchParams(location.search);
  const action = params.get("action");
  const token = tokenFrom(location.hash);
  if (action) {
    // Take the token out of the address bar and history.
    history.replaceState(null, "", location.pathname);
  }
  if (action === "verify-email" && token) {
    replace(root, h("p", { class: "center muted", testid: "verifying", text: "Verifying your e-mail address…" }));
    try {
      await relay.verifyEmail(token);
      start(relay, { mode: "login", notice: { level: "good", text: "Your e-mail address is verified. Log in." } });
    } catch (e) {
      start(relay, { mode: "verify", notice: { level: "error", text: errorText(e) } });
    }
    return;
  }
  if (action === "reset-password" && token) {
    start(relay, { mode: "reset", resetToken: token });
    return;
  }
  start(relay);
}

boot().catch((e: unknown) => {
  console.error(e);
  replace(
    root,
    h("div", { class: "center" }, h("p", { class: "notice error", testid: "boot-error", text: `The chat could not start: ${errorText(e)}` })),
  );
});
