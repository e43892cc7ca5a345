// The passphrase prompt after login: it creates this device's keys (first time on
// this browser), unlocks the ones stored in IndexedDB, or links this browser to an
// account whose keys live elsewhere, from a key backup file.

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
  let linking = false;

  const passphrase = h("input", {
    type: "password",
    name: "passphrase",
    testid: "passphrase",
    autocomplete: existing ? "current-password" : "new-password",
    required: true,
  });
  const repeat = h("input", { type: "password", name: "passphrase-repeat", testid: "passphrase-repeat", autocomplete: "new-password" });
  const backupFile = h("input", { type: "file", testid: "link-backup-file" });
  const backupPass = h("input", { type: "password", testid: "link-backup-passphrase", autocomplete: "off" });
  const linkPart = h(
    "div",
    { class: "stack link-part", hidden: true },
    h("p", {
      class: "notice error",
      text: "This account already has keys on another device. To use it here, link this browser with a key backup file made on that device (“Keys” in its chat). This browser gets its own device keys under the same identity.",
    }),
    field("Key backup file", backupFile),
    field("The backup's passphrase", backupPass),
  );
  const notice = h("p", { class: "notice", role: "status", aria: { live: "polite" } });
  const submit = h("button", {
    type: "submit",
    class: "primary",
    testid: "passphrase-submit",
    text: existing ? "Unlock" : "Create my keys",
  });
  const intro = existing
    ? "This browser keeps your keys, encrypted. Enter the passphrase you chose here to unlock them."
    : "Choose a passphrase. It protects your keys on this device: they are made here, in this browser, and stored only encrypted with it.";
  const introEl = h("p", { text: intro });
  const form = h(
    "form",
    { class: "stack", testid: "passphrase-form", data: { existing: String(Boolean(existing)) } },
    h("h2", { text: `Hello, ${opts.username}` }),
    introEl,
    field(existing ? "Passphrase" : "Passphrase for this device", passphrase),
    existing ? null : field("Passphrase again", repeat),
    linkPart,
    submit,
    h("button", {
      type: "button",
      class: "link",
      text: "Log out",
      on: {
        click: () => {
          store.close();
          void relay.logout().catch(() => undefined);
          opts.onCancel();
        },
      },
    }),
  );
  replace(root, h("div", { class: "center" }, h("section", { class: "card" }, form, notice)));
  passphrase.focus();

  const error = (text: string) => {
    notice.className = "notice error";
    notice.dataset.testid = "passphrase-error";
    notice.textContent = text;
  };

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    if (!existing && passphrase.value !== repeat.value) return error("The two passphrases differ.");
    void (async () => {
      submit.disabled = true;
      notice.className = "notice";
      delete notice.dataset.testid;
      notice.textContent = existing ? "Unlocking your keys…" : linking ? "Linking this browser…" : "Making your keys…";
      try {
        let setup: "auto" | { linkBackup: Uint8Array; backupPassphrase: string } = "auto";
        if (linking) {
          const file = backupFile.files?.[0];
          if (!file) throw Object.assign(new Error("Choose the key backup file."), { code: "no_backup" });
          setup = { linkBackup: new Uint8Array(await file.arrayBuffer()), backupPassphrase: backupPass.value };
        }
        const session = await Session.open({
          relay,
          store,
          passphrase: passphrase.value,
          setup,
          deviceName: browserName(),
        });
        passphrase.value = repeat.value = backupPass.value = "";
        opts.onSession(session);
      } catch (err) {
        const code = errorCode(err);
        if (code === "identity_exists") {
          linking = true;
          linkPart.hidden = false;
          introEl.textContent = "Choose a passphrase for this browser: it protects the keys linked here.";
          submit.textContent = "Link this browser";
          notice.textContent = "";
          backupFile.focus();
        } else if (code === "wrong_key_or_corrupted") {
          error(
            linking
              ? "Wrong passphrase for that backup file (or the file is damaged)."
              : "Wrong passphrase: it does not unlock the keys stored on this device. Try again.",
          );
          (linking ? backupPass : passphrase).select();
        } else if (code === "device_revoked") {
          error("This device was removed from your account on another device. Its keys cannot be used any more.");
        } else {
          error(errorText(err));
        }
      } finally {
        submit.disabled = false;
      }
    })();
  });
}

/** A device name for the device list ("Chromium on Linux"). */
function browserName(): string {
  const ua = navigator.userAgent;
  const browser = /Firefox\//.test(ua) ? "Firefox" : /Edg\//.test(ua) ? "Edge" : /Chrom(e|ium)\//.test(ua) ? "Chromium" : /Safari\//.test(ua) ? "Safari" : "Browser";
  const os = /Android/.test(ua) ? "Android" : /iPhone|iPad/.test(ua) ? "iOS" : /Mac OS/.test(ua) ? "macOS" : /Windows/.test(ua) ? "Windows" : /Linux/.test(ua) ? "Linux" : "";
  return os ? `${browser} on ${os}` : browser;
}
