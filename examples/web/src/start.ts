// The start screen: log in, register, verify an e-mail address, reset a password.

import { type Relay, errorText } from "./api.js";
import { field, h, replace } from "./dom.js";

export type StartMode = "login" | "register" | "verify" | "forgot" | "reset";

export interface StartOptions {
  mode?: StartMode;
  notice?: { text: string; level: "info" | "good" | "error" };
  /** The token of an e-mailed reset link. */
  resetToken?: string;
  onLoggedIn: (login: { userId: string; username: string }) => void;
}

/** The token in a pasted verification link (`…#token=T`, `…?token=T`) or a bare token. */
export function tokenFrom(text: string): string {
  const t = text.trim();
  const m = /[#?&]token=([^&#\s]+)/.exec(t);
  return decodeURIComponent(m ? m[1]! : t);
}

function input(name: string, type: string, testid: string, autocomplete: string, placeholder = ""): HTMLInputElement {
  return h("input", { name, type, testid, autocomplete, placeholder, required: true });
}

function submitButton(label: string, testid: string): HTMLButtonElement {
  return h("button", { type: "submit", class: "primary", testid, text: label });
}

/** Runs `work` with the form's button disabled, showing errors in `notice`. */
async function busy(form: HTMLFormElement, notice: HTMLElement, work: () => Promise<void>): Promise<void> {
  const buttons = form.querySelectorAll("button");
  buttons.forEach((b) => (b.disabled = true));
  notice.className = "notice";
  notice.textContent = "";
  try {
    await work();
  } catch (e) {
    notice.className = "notice error";
    notice.dataset.testid = "start-error";
    notice.textContent = errorText(e);
  } finally {
    buttons.forEach((b) => (b.disabled = false));
  }
}

export function showStart(root: HTMLElement, relay: Relay, opts: StartOptions): void {
  let mode: StartMode = opts.mode ?? "login";
  let notice = opts.notice;

  const tabs = h("nav", { class: "tabs", aria: { label: "Start" } });
  const body = h("div", { class: "start-body" });
  const card = h(
    "section",
    { class: "start card", testid: "start" },
    h("h1", { class: "brand" }, "Sotto"),
    h("p", { class: "tagline", text: "End-to-end encrypted chat. Your keys are made and kept in this browser." }),
    tabs,
    body,
  );
  replace(root, h("div", { class: "center" }, card));

  const go = (m: StartMode, n?: StartOptions["notice"]) => {
    mode = m;
    notice = n;
    draw();
  };

  function noticeEl(): HTMLElement {
    const el = h("p", { class: "notice", role: "status", aria: { live: "polite" } });
    if (notice) {
      el.className = `notice ${notice.level}`;
      el.dataset.testid = notice.level === "error" ? "start-error" : "start-notice";
      el.textContent = notice.text;
    }
    return el;
  }

  function draw(): void {
    const tab = (m: StartMode, label: string) =>
      h("button", {
        type: "button",
        class: `tab${mode === m ? " active" : ""}`,
        testid: `tab-${m}`,
        text: label,
        aria: { pressed: String(mode === m) },
        on: { click: () => go(m) },
      });
    replace(tabs, tab("login", "Log in"), tab("register", "Register"), tab("verify", "I have a verification link"));
    const n = noticeEl();
    switch (mode) {
      case "login":
        replace(body, loginForm(n), n);
        break;
      case "register":
        replace(body, registerForm(n), n);
        break;
      case "verify":
        replace(body, verifyForm(n), n);
        break;
      case "forgot":
        replace(body, forgotForm(n), n);
        break;
      case "reset":
        replace(body, resetForm(n), n);
        break;
    }
    body.querySelector("input")?.focus();
  }

  function loginForm(n: HTMLElement): HTMLFormElement {
    const login = input("login", "text", "login-username", "username", "username or e-mail");
    const password = input("password", "password", "login-password", "current-password");
    const form = h(
      "form",
      { class: "stack", testid: "login-form" },
      field("Username or e-mail", login),
      field("Password", password),
      submitButton("Log in", "login-submit"),
      h("button", { type: "button", class: "link", text: "Forgot your password?", on: { click: () => go("forgot") } }),
    );
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      void busy(form, n, async () => {
        const user = await relay.login(login.value.trim(), password.value);
        password.value = "";
        opts.onLoggedIn({ userId: user.id, username: user.username });
      });
    });
    return form;
  }

  function registerForm(n: HTMLElement): HTMLFormElement {
    const username = input("username", "text", "register-username", "username", "letters, digits, _ . -");
    const email = input("email", "email", "register-email", "email");
    const password = input("password", "password", "register-password", "new-password", "at least 8 characters");
    password.minLength = 8;
    const form = h(
      "form",
      { class: "stack", testid: "register-form" },
      field("Username", username),
      field("E-mail", email),
      field("Password", password),
      submitButton("Create account", "register-submit"),
    );
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      void busy(form, n, async () => {
        await relay.register(username.value.trim(), email.value.trim(), password.value);
        password.value = "";
        go("verify", {
          level: "good",
          text: `Account created. Check your e-mail (${email.value.trim()}) for the verification link and open it here (dev relay: the link is in data/outbox).`,
        });
      });
    });
    return form;
  }

  function verifyForm(n: HTMLElement): HTMLFormElement {
    const link = input("link", "text", "verify-link", "off", "https://…/verify-email#token=…");
    const form = h(
      "form",
      { class: "stack", testid: "verify-form" },
      field("Verification link (or its token)", link),
      submitButton("Verify", "verify-submit"),
      resendRow(n),
    );
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      void busy(form, n, async () => {
        await relay.verifyEmail(tokenFrom(link.value));
        go("login", { level: "good", text: "Your e-mail address is verified. Log in." });
      });
    });
    return form;
  }

  function resendRow(n: HTMLElement): HTMLElement {
    const email = h("input", { type: "email", name: "resend", placeholder: "your e-mail", autocomplete: "email" });
    const button = h("button", {
      type: "button",
      text: "Send the link again",
      on: {
        click: () => {
          if (!email.value.trim()) return email.focus();
          button.disabled = true;
          relay
            .resendVerification(email.value.trim())
            .then(() => {
              n.className = "notice good";
              n.textContent = "If that address has an unverified account, a new link is on its way.";
            })
            .catch((err: unknown) => {
              n.className = "notice error";
              n.textContent = errorText(err);
            })
            .finally(() => (button.disabled = false));
        },
      },
    });
    return h("div", { class: "row resend" }, email, button);
  }

  function forgotForm(n: HTMLElement): HTMLFormElement {
    const email = input("email", "email", "forgot-email", "email");
    const form = h(
      "form",
      { class: "stack" },
      field("E-mail of your account", email),
      submitButton("Send a reset link", "forgot-submit"),
    );
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      void busy(form, n, async () => {
        await relay.forgotPassword(email.value.trim());
        n.className = "notice good";
        n.textContent = "If an account has that address, a reset link is on its way (dev relay: data/outbox).";
      });
    });
    return form;
  }

  function resetForm(n: HTMLElement): HTMLFormElement {
    const password = input("password", "password", "reset-password", "new-password", "at least 8 characters");
    const form = h(
      "form",
      { class: "stack" },
      h("p", { text: "Choose a new password. Every session of your account is logged out." }),
      field("New password", password),
      submitButton("Set the new password", "reset-submit"),
    );
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      void busy(form, n, async () => {
        if (!opts.resetToken) throw new Error("This page was not opened from a reset link.");
        await relay.resetPassword(opts.resetToken, password.value);
        go("login", { level: "good", text: "Your password is changed. Log in with the new one." });
      });
    });
    return form;
  }

  draw();
}
