// The passphrase prompt after login: it creates this device's keys (first time on
// this browser) or unlocks the ones stored in IndexedDB.

import { IndexedDbStore, type Relay, Session, errorCode, errorText, storedKeys } from "./api.js";
import { field, h, replace } from "./dom.js";

export interface UnlockOptions {
  userId: string;
  username: string;
  onSession: (session: Session) => void;
  onCancel: () => void;
}

export async function showUnlock(root: HTMLElement, relay: Relay, opts: UnlockOptions): Promise<void> {
  const store = await IndexedDbStore.open(opts.userId);
  const existing = await storedKeys(store);
  const passphrase = h("input", {
    type: "password",
    name: "passphrase",
    testid: "passphrase",
    autocomplete: existing ? "current-password" : "new-password",
    required: true,
  });
  const repeat = h("input", {
    type: "password",
    name: "passphrase-repeat",
    testid: "passphrase-repeat",
    autocomplete: "new-password",
  });
  const notice = h("p", { class: "notice", role: "status", aria: { live: "polite" } });
  const submit = h("button", {
    type: "submit",
    class: "primary",
    testid: "passphrase-submit",
    text: existing ? "Unlock" : existing === false ? "Create my keys" : "Continue",
  });
  const intro =
    existing === true
      ? "This browser keeps your keys, encrypted. Enter the passphrase you chose here to unlock them."
      : existing === false
        ? "Choose a passphrase. It protects your keys on this device: they are made here, in this browser, and stored only encrypted with it."
        : "Your passphrase protects your keys on this device. The first time, your keys are made here and stored encrypted with it; afterwards it unlocks them.";
  const form = h(
    "form",
    { class: "stack", testid: "passphrase-form" },
    h("h2", { text: `Hello, ${opts.username}` }),
    h("p", { text: intro }),
    field("Passphrase", passphrase),
    existing === false ? field("Passphrase again", repeat) : null,
    submit,
    h("button", {
      type: "button",
      class: "link",
      text: "Log out",
      on: {
        click: () => {
          void relay.logout().catch(() => undefined);
          opts.onCancel();
        },
      },
    }),
  );
  replace(root, h("div", { class: "center" }, h("section", { class: "card" }, form, notice)));
  passphrase.focus();

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    if (existing === false && passphrase.value !== repeat.value) {
      notice.className = "notice error";
      notice.dataset.testid = "passphrase-error";
      notice.textContent = "The two passphrases differ.";
      return;
    }
    submit.disabled = true;
    notice.className = "notice";
    notice.textContent = existing ? "Unlocking your keys…" : "Setting up your keys…";
    Session.open({ relay, store, passphrase: passphrase.value })
      .then((session) => {
        passphrase.value = "";
        repeat.value = "";
        opts.onSession(session);
      })
      .catch((err: unknown) => {
        notice.className = "notice error";
        notice.dataset.testid = "passphrase-error";
        notice.textContent =
          errorCode(err) === "wrong_key_or_corrupted"
            ? "Wrong passphrase: it does not unlock the keys stored on this device. Try again."
            : errorText(err);
        passphrase.select();
      })
      .finally(() => (submit.disabled = false));
  });
}
