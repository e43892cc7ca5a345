// Modal dialogs: new direct chat (user search), new group, invite, contacts,
// members of a group, and the safety number of a peer.

import { type PublicUser, errorText } from "./api.js";
import type { Chat } from "./chat.js";
import { field, h, replace } from "./dom.js";
import { safetyRows } from "./format.js";
import type { RoomState } from "./state.js";

interface Dialog {
  el: HTMLDialogElement;
  body: HTMLElement;
  status: HTMLElement;
  close: () => void;
}

function openDialog(title: string, testid: string): Dialog {
  const body = h("div", { class: "dialog-body" });
  const status = h("p", { class: "notice", role: "status", aria: { live: "polite" } });
  const el = h(
    "dialog",
    { class: "modal", testid },
    h(
      "div",
      { class: "dialog-head" },
      h("h2", { text: title }),
      h("button", { type: "button", class: "close", testid: "dialog-close", title: "Close", text: "✕", on: { click: () => close() } }),
    ),
    body,
    status,
  );
  const close = () => {
    el.close();
    el.remove();
  };
  el.addEventListener("cancel", () => el.remove());
  el.addEventListener("click", (e) => {
    if (e.target === el) close();
  });
  document.body.append(el);
  el.showModal();
  return { el, body, status, close };
}

function fail(d: Dialog, e: unknown): void {
  d.status.className = "notice error";
  d.status.dataset.testid = "dialog-error";
  d.status.textContent = errorText(e);
}

/** A search box over the relay's user search, calling `row` for each result. */
function userSearch(chat: Chat, d: Dialog, row: (u: PublicUser) => HTMLElement): HTMLElement {
  const q = h("input", { type: "search", testid: "user-search", placeholder: "username", autocomplete: "off", aria: { label: "Find people by username" } });
  const results = h("ul", { class: "user-results", testid: "user-results" });
  let timer = 0;
  let asked = "";
  const run = async () => {
    const text = q.value.trim().replace(/^@/, "");
    asked = text;
    if (!text) return results.replaceChildren();
    try {
      const found = await chat.session.searchUsers(text);
      if (asked !== text) return;
      const users = (Array.isArray(found) ? found : (found as { items: PublicUser[] }).items).filter((u) => u.id !== chat.state.me);
      for (const u of users) chat.state.users.set(u.id, u.username);
      if (users.length === 0) replace(results, h("li", { class: "empty", text: `Nobody found for “${text}” (only verified accounts are listed).` }));
      else replace(results, ...users.map(row));
    } catch (e) {
      fail(d, e);
    }
  };
  q.addEventListener("input", () => {
    window.clearTimeout(timer);
    timer = window.setTimeout(() => void run(), 200);
  });
  // Focus the search box once it is in the dialog, unless a field of the dialog
  // (the group's name) already has the focus: never move the caret away from
  // where someone is typing.
  setTimeout(() => {
    if (!(document.activeElement instanceof HTMLInputElement)) q.focus();
  }, 0);
  return h("div", { class: "stack" }, field("Find people", q), results);
}

function userRow(u: PublicUser, ...actions: HTMLElement[]): HTMLElement {
  return h(
    "li",
    { class: "user-row", testid: "user-result", data: { username: u.username, userId: u.id } },
    h("span", { class: "user-name" }, h("strong", { text: u.username }), u.display_name ? h("span", { class: "muted", text: ` ${u.display_name}` }) : null),
    h("span", { class: "actions" }, ...actions),
  );
}

function action(label: string, testid: string, work: () => Promise<void>, d: Dialog): HTMLButtonElement {
  const b: HTMLButtonElement = h("button", {
    type: "button",
    testid,
    text: label,
    on: {
      click: () => {
        b.disabled = true;
        work()
          .catch((e: unknown) => fail(d, e))
          .finally(() => (b.disabled = false));
      },
    },
  });
  return b;
}

export function newChatDialog(chat: Chat): void {
  const d = openDialog("New chat", "new-chat-dialog");
  d.body.append(
    userSearch(chat, d, (u) =>
      userRow(
        u,
        action("Chat", "start-chat", async () => {
          await chat.startDirect(u.id, u.username);
          d.close();
        }, d),
        action("Add contact", "add-contact", async () => {
          await chat.session.addContact(u.id);
          d.status.className = "notice good";
          d.status.textContent = `${u.username} is in your contacts.`;
        }, d),
      ),
    ),
  );
}

export function newGroupDialog(chat: Chat): void {
  const d = openDialog("New group", "new-group-dialog");
  const name = h("input", { type: "text", testid: "group-name", placeholder: "name (visible to the relay)", required: true });
  const chosen = new Map<string, string>();
  const chips = h("ul", { class: "chips", testid: "group-members" });
  const drawChips = () =>
    replace(
      chips,
      ...[...chosen].map(([id, n]) =>
        h("li", { class: "chip" }, n, h("button", { type: "button", class: "close", title: `Remove ${n}`, text: "✕", on: { click: () => (chosen.delete(id), drawChips()) } })),
      ),
    );
  const create = action("Create group", "create-group", async () => {
    if (!name.value.trim()) {
      name.focus();
      throw new Error("Give the group a name.");
    }
    await chat.createGroup(name.value.trim(), [...chosen.keys()]);
    d.close();
  }, d);
  create.classList.add("primary");
  d.body.append(
    field("Group name", name),
    h("p", { class: "muted", text: "Room names are metadata the relay sees; messages are end-to-end encrypted." }),
    chips,
    userSearch(chat, d, (u) =>
      userRow(u, h("button", { type: "button", testid: "pick-user", text: "Add", on: { click: () => (chosen.set(u.id, u.username), drawChips()) } })),
    ),
    create,
  );
  name.focus();
}

export function inviteDialog(chat: Chat, room: RoomState): void {
  const d = openDialog(`Invite to ${chat.state.title(room)}`, "invite-dialog");
  d.body.append(
    userSearch(chat, d, (u) =>
      room.members.some((m) => m.userId === u.id)
        ? userRow(u, h("span", { class: "muted", text: "member" }))
        : userRow(
            u,
            action("Invite", "invite-user", async () => {
              await chat.invite(room.id, u.id, u.username);
              d.close();
            }, d),
          ),
    ),
  );
}

export function contactsDialog(chat: Chat): void {
  const d = openDialog("Contacts", "contacts-dialog");
  const list = h("ul", { class: "user-results", testid: "contact-list" });
  const load = async () => {
    try {
      const contacts = (await chat.session.contacts()) as unknown as Array<{
        id: string;
        user_id?: string;
        username?: string;
        nickname?: string | null;
        user?: { id: string; username: string };
      }>;
      if (contacts.length === 0) {
        replace(list, h("li", { class: "empty", text: "No contacts yet: find people below and add them." }));
        return;
      }
      replace(
        list,
        ...contacts.map((c) => {
          const userId = c.user_id ?? c.user?.id ?? "";
          const username = c.username ?? c.user?.username ?? chat.state.nameOf(userId);
          chat.state.users.set(userId, username);
          const online = chat.state.presence.get(userId) === true;
          return h(
            "li",
            { class: "user-row", testid: "contact", data: { username } },
            h(
              "span",
              { class: "user-name" },
              h("span", { class: `dot ${online ? "online" : "offline"}`, text: online ? "● " : "○ " }),
              h("strong", { text: c.nickname || username }),
              c.nickname ? h("span", { class: "muted", text: ` @${username}` }) : null,
            ),
            h(
              "span",
              { class: "actions" },
              action("Chat", "contact-chat", async () => {
                await chat.startDirect(userId, username);
                d.close();
              }, d),
            ),
          );
        }),
      );
    } catch (e) {
      fail(d, e);
    }
  };
  d.body.append(
    list,
    h("h3", { text: "Add a contact" }),
    userSearch(chat, d, (u) =>
      userRow(
        u,
        action("Add", "add-contact", async () => {
          await chat.session.addContact(u.id);
          await load();
        }, d),
      ),
    ),
  );
  void load();
}

export function membersDialog(chat: Chat, room: RoomState): void {
  const d = openDialog(`Members of ${chat.state.title(room)}`, "members-dialog");
  const state = chat.state;
  d.body.append(
    h(
      "ul",
      { class: "user-results", testid: "member-list" },
      ...room.members.map((m) => {
        const me = m.userId === state.me;
        const online = me || state.presence.get(m.userId) === true;
        const trust = me ? "you" : chat.trust(m.userId);
        return h(
          "li",
          { class: "user-row", testid: "member", data: { username: m.username } },
          h(
            "span",
            { class: "user-name" },
            h("span", { class: `dot ${online ? "online" : "offline"}`, text: online ? "● " : "○ " }),
            h("strong", { text: m.username }),
            h("span", { class: `muted trust-${trust}`, text: ` ${m.role === "owner" ? "owner · " : ""}${trust === "changed" ? "⚠ key changed" : trust}` }),
          ),
          me
            ? null
            : h("span", { class: "actions" }, h("button", { type: "button", testid: "member-safety", text: "Safety number", on: { click: () => (d.close(), safetyDialog(chat, m.userId)) } })),
        );
      }),
    ),
  );
}

export function safetyDialog(chat: Chat, userId: string): void {
  const name = chat.state.nameOf(userId);
  const d = openDialog(`Safety number with ${name}`, "safety-dialog");
  const draw = async () => {
    try {
      const sn = await chat.session.safetyNumber(userId);
      const changed = chat.state.alerts.has(userId);
      const rows = safetyRows(sn.digits);
      replace(
        d.body,
        h(
          "p",
          { text: `Compare these 60 digits with what ${name} sees for you: in person, or on a call you trust. If they match, nobody is in the middle, and you can mark ${name} verified.` },
        ),
        h("div", { class: "safety-number", testid: "safety-number", data: { digits: sn.digits } }, ...rows.map((r) => h("div", { text: r }))),
        changed
          ? h("p", { class: "notice error", text: `⚠ ${name}'s identity key changed. This number is for the new key.` })
          : sn.verified
            ? h("p", { class: "notice good", testid: "verified-state", text: `✓ You verified ${name}.` })
            : h("p", { class: "muted", testid: "verified-state", text: "Not verified yet." }),
        changed
          ? action("Accept new key", "accept-identity-dialog", async () => {
              await chat.accept(userId);
              await draw();
            }, d)
          : sn.verified
            ? null
            : action("Mark verified", "mark-verified", async () => {
                await chat.session.markVerified(userId);
                chat.state.changed("room", chat.state.current ?? undefined);
                await draw();
              }, d),
      );
    } catch (e) {
      fail(d, e);
    }
  };
  void draw();
}

/** Writes a key backup file of this device (to link another browser to the account). */
export function backupDialog(chat: Chat): void {
  const d = openDialog("Back up your keys", "backup-dialog");
  const pass = h("input", { type: "password", testid: "backup-passphrase", autocomplete: "new-password", minlength: 8 });
  const again = h("input", { type: "password", testid: "backup-passphrase-repeat", autocomplete: "new-password" });
  const make = action("Save the backup file", "backup-save", async () => {
    if (pass.value.length < 8) throw new Error("Use a passphrase of at least 8 characters.");
    if (pass.value !== again.value) throw new Error("The two passphrases differ.");
    // Argon2id with the core's parameters: this takes a moment.
    d.status.className = "notice";
    d.status.textContent = "Encrypting your keys…";
    await new Promise((r) => setTimeout(r, 20));
    const blob = chat.session.exportBackup(pass.value);
    pass.value = again.value = "";
    const url = URL.createObjectURL(new Blob([blob as BlobPart], { type: "application/octet-stream" }));
    const a = h("a", {});
    a.href = url;
    a.download = `sotto-${chat.state.myName}-keys.backup`;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
    d.status.className = "notice good";
    d.status.textContent = "Saved. Keep the file and its passphrase safe: together they are your identity.";
  }, d);
  make.classList.add("primary");
  d.body.append(
    h("p", {
      text: "The backup holds your identity and this device's keys, encrypted with the passphrase you choose here. Use it to link another browser to your account (on its passphrase screen). Anyone with the file and the passphrase can read your messages.",
    }),
    field("Backup passphrase", pass),
    field("Again", again),
    make,
  );
}
