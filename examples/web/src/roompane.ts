// The open room: header (back, title, presence, safety number, invite), the
// identity-change banner, the messages with their marks, the typing line and the
// composer (Enter sends, Shift+Enter is a new line; files with upload progress).

import type { Chat } from "./chat.js";
import { h, replace } from "./dom.js";
import { inviteDialog, membersDialog, safetyDialog } from "./dialogs.js";
import { MARK_GLYPH, MARK_TITLE, percent, size, time } from "./format.js";
import type { ChatMessage, RoomState } from "./state.js";
import { errorText } from "./api.js";
import { icon } from "./icons.js";

interface Drawn {
  el: HTMLElement;
  version: number;
  mark: string;
}

export class RoomPane {
  readonly el: HTMLElement;
  private header = h("div", { class: "room-header", testid: "room-header" });
  private banner = h("div", { class: "banners" });
  private list = h("ol", { class: "messages", testid: "messages", aria: { live: "polite" } });
  private typing = h("div", { class: "typing", testid: "typing", aria: { live: "polite" } });
  private input = h("textarea", {
    testid: "composer",
    placeholder: "Message",
    aria: { label: "Message" },
  });
  private fileInput = h("input", { type: "file", testid: "file-input", multiple: true, class: "visually-hidden" });
  private composer: HTMLFormElement;
  private drawn = new WeakMap<ChatMessage, Drawn>();
  private roomId: string | null = null;

  constructor(private readonly chat: Chat) {
    this.input.rows = 1;
    const send = h("button", { type: "submit", class: "primary send", testid: "send", title: "Send (Enter)", text: "Send" });
    const attach = h(
      "label",
      { class: "button attach", title: "Send a file (end-to-end encrypted)" },
      icon("attach"),
      h("span", { class: "visually-hidden", text: "Send a file" }),
      this.fileInput,
    );
    this.composer = h("form", { class: "composer", testid: "composer-form" }, attach, this.input, send);
    this.composer.addEventListener("submit", (e) => {
      e.preventDefault();
      this.submit();
    });
    this.input.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        this.submit();
      }
    });
    this.input.addEventListener("input", () => {
      this.autosize();
      if (this.roomId) this.chat.typed(this.roomId, this.input.value.trim() !== "");
    });
    this.fileInput.addEventListener("change", () => {
      const files = [...(this.fileInput.files ?? [])];
      this.fileInput.value = "";
      if (this.roomId) for (const f of files) this.chat.sendFile(this.roomId, f);
    });

    this.el = h(
      "main",
      { class: "room-pane", testid: "room-pane" },
      this.header,
      this.banner,
      this.list,
      this.typing,
      this.composer,
    );
    const s = chat.state;
    s.on("rooms", () => this.switchIfNeeded());
    s.on("room", (id) => {
      if (id === this.roomId) {
        this.drawHeader();
        this.drawMessages();
      }
    });
    s.on("typing", (id) => id === this.roomId && this.drawTyping());
    s.on("presence", () => this.drawHeader());
    s.on("alerts", () => this.drawBanner());
    this.switchIfNeeded();
  }

  private room(): RoomState | null {
    return this.roomId ? this.chat.state.room(this.roomId) : null;
  }

  private switchIfNeeded(): void {
    const cur = this.chat.state.current;
    if (cur === this.roomId) {
      this.drawHeader();
      return;
    }
    this.roomId = cur;
    this.list.replaceChildren();
    this.drawn = new WeakMap();
    this.input.value = "";
    this.autosize();
    this.el.dataset.roomId = cur ?? "";
    this.composer.hidden = !cur;
    this.drawHeader();
    this.drawBanner();
    this.drawMessages(true);
    this.drawTyping();
    if (cur && window.matchMedia("(pointer: fine)").matches) this.input.focus();
  }

  private submit(): void {
    if (!this.roomId) return;
    const text = this.input.value;
    if (!text.trim()) return;
    this.input.value = "";
    this.autosize();
    this.chat.sendText(this.roomId, text);
  }

  private autosize(): void {
    this.input.style.height = "auto";
    this.input.style.height = `${Math.min(this.input.scrollHeight, 160)}px`;
  }

  private drawHeader(): void {
    const room = this.room();
    const state = this.chat.state;
    const back = h("button", { type: "button", class: "back", testid: "back", title: "Back to the chats", text: "←", on: { click: () => this.chat.back() } });
    if (!room) {
      replace(this.header, h("span", { class: "room-name", text: "Choose a chat, or start a new one." }));
      return;
    }
    const peer = room.peer(state.me);
    let subtitle: HTMLElement;
    if (peer) {
      const online = state.presence.get(peer.userId) === true;
      const trust = this.chat.trust(peer.userId);
      subtitle = h(
        "span",
        { class: "subtitle" },
        h("span", { class: `dot ${online ? "online" : "offline"}`, testid: "peer-presence", data: { online: String(online) }, text: online ? "● online" : "○ offline" }),
        trust === "verified" ? h("span", { class: "verified", testid: "peer-verified", text: " · ✓ verified" }) : null,
      );
    } else {
      const online = room.members.filter((m) => m.userId !== state.me && state.presence.get(m.userId)).length;
      const invited = room.invited.length > 0 ? ` · ${room.invited.length} invited` : "";
      subtitle = h("span", {
        class: "subtitle",
        testid: "room-subtitle",
        data: { members: String(room.members.length) },
        text: `${room.members.length} members · ${online} online${invited}`,
      });
    }
    replace(
      this.header,
      back,
      h("div", { class: "room-name" }, h("strong", { testid: "room-title", text: state.title(room) }), subtitle),
      peer
        ? h("button", { type: "button", testid: "safety-button", title: "Safety number", on: { click: () => safetyDialog(this.chat, peer.userId) } }, icon("lock"), h("span", { class: "label", text: "Safety number" }))
        : h("button", { type: "button", testid: "members-button", text: "Members", on: { click: () => membersDialog(this.chat, room) } }),
      room.kind === "group" && room.members.some((m) => m.userId === state.me && m.role === "owner")
        ? h("button", { type: "button", testid: "invite-button", text: "Invite", on: { click: () => inviteDialog(this.chat, room) } })
        : null,
    );
  }

  private drawBanner(): void {
    const room = this.room();
    if (!room) return this.banner.replaceChildren();
    const state = this.chat.state;
    replace(
      this.banner,
      ...state.roomAlerts(room).map((userId) => {
        const name = state.nameOf(userId);
        const status = h("span", { class: "banner-status" });
        const accept = h("button", {
          type: "button",
          class: "danger",
          testid: "accept-identity",
          text: "Accept new key",
          on: {
            click: () => {
              accept.disabled = true;
              this.chat.accept(userId).catch((e: unknown) => {
                status.textContent = errorText(e);
                accept.disabled = false;
              });
            },
          },
        });
        return h(
          "div",
          { class: "banner identity", testid: "identity-banner", role: "alert", data: { userId } },
          h("strong", { text: `⚠ ${name}'s identity key changed.` }),
          h("span", {
            text: " Someone may be impersonating them, or they set up a new device without their old keys. Nothing is sent to them until you accept the new key: compare the safety number with them first (in person or on a call).",
          }),
          h(
            "div",
            { class: "banner-actions" },
            h("button", { type: "button", text: "Safety number", on: { click: () => safetyDialog(this.chat, userId) } }),
            accept,
            status,
          ),
        );
      }),
    );
  }

  private drawTyping(): void {
    const room = this.room();
    const names = room ? [...room.typing.keys()].map((u) => this.chat.state.nameOf(u)) : [];
    this.typing.textContent =
      names.length === 0 ? "" : names.length === 1 ? `${names[0]} is typing…` : `${names.join(", ")} are typing…`;
    this.typing.classList.toggle("active", names.length > 0);
  }

  private drawMessages(jump = false): void {
    const room = this.room();
    const list = this.list;
    if (!room) {
      replace(list, h("li", { class: "placeholder", text: "Messages are end-to-end encrypted: the relay stores only sealed envelopes." }));
      return;
    }
    const nearBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 60;
    const wanted: HTMLElement[] = [];
    let ownNew = false;
    for (const msg of room.messages) {
      const mark = msg.own && !msg.system ? room.mark(msg) : "";
      let d = this.drawn.get(msg);
      if (!d || d.version !== msg.version || d.mark !== mark) {
        const el = this.message(room, msg, mark);
        if (d) d.el.replaceWith(el);
        else if (msg.own) ownNew = true;
        d = { el, version: msg.version, mark };
        this.drawn.set(msg, d);
      }
      wanted.push(d.el);
    }
    // Put the elements in order, removing the rest.
    const keep = new Set(wanted);
    for (const child of [...list.children]) if (!keep.has(child as HTMLElement)) child.remove();
    let at: ChildNode | null = list.firstChild;
    for (const el of wanted) {
      if (el === at) {
        at = at.nextSibling;
      } else {
        list.insertBefore(el, at);
      }
    }
    if (wanted.length === 0) {
      list.append(h("li", { class: "placeholder", text: "No messages yet. Say hello: only the people in this room can read it." }));
    }
    if (jump || nearBottom || ownNew) list.scrollTop = list.scrollHeight;
  }

  private message(room: RoomState, msg: ChatMessage, mark: string): HTMLElement {
    const state = this.chat.state;
    if (msg.system) {
      return h("li", {
        class: `system ${msg.system.level}`,
        testid: "system-line",
        text: msg.content.type === "text" ? msg.content.body : "",
      });
    }
    const sender = state.nameOf(msg.senderId);
    const showSender = !msg.own && room.kind === "group";
    let body: HTMLElement;
    let text = "";
    switch (msg.content.type) {
      case "text":
        text = msg.content.body;
        body = h("div", { class: "body", testid: "message-text", text });
        break;
      case "file":
        text = msg.content.file.name ?? "file";
        body = this.fileBody(room, msg, text, msg.content.file.size);
        break;
      case "pending-file":
        text = msg.content.name;
        body = this.fileBody(room, msg, text, msg.content.size);
        break;
      default:
        body = h("div", { class: "body unsupported", text: "unsupported message (sent by a newer app?)" });
    }
    const meta = h(
      "div",
      { class: "meta" },
      h("time", { datetime: new Date(msg.at).toISOString(), text: time(msg.at) }),
    );
    if (mark) {
      meta.append(
        h("span", {
          class: `mark mark-${mark}`,
          testid: "mark",
          title: MARK_TITLE[mark as keyof typeof MARK_TITLE],
          text: MARK_GLYPH[mark as keyof typeof MARK_GLYPH],
        }),
      );
    }
    const bubble = h("div", { class: "bubble" }, showSender ? h("div", { class: "sender", text: sender }) : null, body, meta);
    if (msg.send === "failed") {
      bubble.append(
        h(
          "div",
          { class: "send-error", testid: "send-error" },
          h("span", { text: msg.error ?? "Not sent." }),
          msg.content.type === "text"
            ? h("button", { type: "button", class: "link", text: "Retry", on: { click: () => this.chat.retry(room.id, msg) } })
            : null,
        ),
      );
    }
    return h(
      "li",
      {
        class: `msg ${msg.own ? "own" : "peer"}`,
        testid: "message",
        data: {
          seq: msg.seq !== undefined ? String(msg.seq) : "",
          mark,
          sender,
          text,
          kind: msg.content.type === "pending-file" ? "file" : msg.content.type,
        },
      },
      bubble,
    );
  }

  private fileBody(room: RoomState, msg: ChatMessage, name: string, bytes: number): HTMLElement {
    const t = msg.transfer;
    const el = h(
      "div",
      { class: "body file", testid: "file" },
      icon("file"),
      h("span", { class: "file-name", testid: "file-name", text: name }),
      h("span", { class: "file-size", text: size(bytes) }),
    );
    if (t && !t.url && !t.error && t.done < t.total) {
      const bar = h("progress", { testid: `${t.kind}-progress` });
      bar.max = Math.max(t.total, 1);
      bar.value = t.done;
      el.append(bar, h("span", { class: "file-progress", text: `${t.kind === "upload" ? "uploading" : "downloading"} ${percent(t.done, t.total)}` }));
    }
    if (t?.error) el.append(h("span", { class: "file-error", text: t.error }));
    if (msg.content.type === "file") {
      el.append(
        h("button", {
          type: "button",
          testid: "download",
          text: t?.url ? "Save again" : "Download",
          disabled: Boolean(t && !t.url && !t.error && t.kind === "download"),
          on: { click: () => this.chat.download(room.id, msg) },
        }),
      );
      if (t?.url && msg.content.file.content_type?.startsWith("image/")) {
        const img = h("img", { class: "preview", title: name });
        img.src = t.url;
        img.alt = name;
        el.append(img);
      }
    }
    return el;
  }
}
