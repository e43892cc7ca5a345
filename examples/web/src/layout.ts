// The chat's frame: the top bar (me, connection, contacts, log out), the room list
// and the room pane. On narrow screens one pane shows at a time (back button).

import type { Chat } from "./chat.js";
import { h, replace } from "./dom.js";
import { backupDialog, contactsDialog, newChatDialog, newGroupDialog } from "./dialogs.js";
import { RoomPane } from "./roompane.js";

const CONNECTION_TEXT: Record<string, string> = {
  connecting: "connecting…",
  online: "online",
  offline: "offline: reconnecting…",
  following: "online (through another tab)",
};

export function mountLayout(root: HTMLElement, chat: Chat): void {
  const state = chat.state;
  const connection = h("span", { class: "connection", testid: "connection", role: "status" });
  const drawConnection = () => {
    connection.textContent = CONNECTION_TEXT[state.connection] ?? state.connection;
    connection.dataset.state = state.connection;
  };

  const top = h(
    "header",
    { class: "topbar" },
    h("span", { class: "brand", text: "Sotto" }),
    h("span", { class: "me", testid: "me", title: `device ${state.deviceId}`, text: state.myName }),
    connection,
    h("span", { class: "spacer" }),
    h("button", { type: "button", testid: "contacts", text: "Contacts", on: { click: () => contactsDialog(chat) } }),
    h("button", { type: "button", testid: "backup-keys", title: "Back up your keys (to link another browser)", text: "Keys", on: { click: () => backupDialog(chat) } }),
    h("button", { type: "button", testid: "logout", text: "Log out", on: { click: () => void chat.logout() } }),
  );

  const list = h("ul", { class: "room-list", testid: "room-list", aria: { label: "Chats" } });
  const sidebar = h(
    "aside",
    { class: "sidebar" },
    h(
      "div",
      { class: "sidebar-actions" },
      h("button", { type: "button", class: "primary", testid: "new-chat", text: "New chat", on: { click: () => newChatDialog(chat) } }),
      h("button", { type: "button", testid: "new-group", text: "New group", on: { click: () => newGroupDialog(chat) } }),
    ),
    list,
  );

  const pane = new RoomPane(chat);
  const frame = h("div", { class: "chat", testid: "chat" }, top, h("div", { class: "panes" }, sidebar, pane.el));
  replace(root, frame);

  // Invitations first: someone who is not in your contacts asked you into a
  // room; nothing of it reaches you (and you are not in it) until you accept.
  const invitationItems = () =>
    state.invitations.map((inv) =>
      h(
        "li",
        { class: "invitation", testid: "invitation", data: { inviter: inv.inviter, invitationId: inv.id } },
        h(
          "span",
          { class: "room-text" },
          h("span", {
            class: "room-title",
            text: inv.direct ? `${inv.inviter} wants to chat` : `${inv.inviter} invites you to ${inv.roomName || "a group"}`,
          }),
          h("span", { class: "room-preview", text: "You see messages from when you accept." }),
        ),
        h("button", {
          type: "button",
          class: "primary",
          testid: "accept-invitation",
          text: "Accept",
          on: { click: () => void chat.acceptInvitation(inv.id).catch((e) => console.warn("accept", e)) },
        }),
        h("button", {
          type: "button",
          testid: "decline-invitation",
          text: "Decline",
          on: { click: () => void chat.declineInvitation(inv.id).catch((e) => console.warn("decline", e)) },
        }),
      ),
    );

  const drawList = () => {
    frame.dataset.pane = chat.roomPaneShown && state.current ? "room" : "list";
    const rooms = state.ordered();
    if (rooms.length === 0 && state.invitations.length === 0) {
      replace(list, h("li", { class: "empty", text: "No chats yet. Start one with “New chat”." }));
      return;
    }
    replace(
      list,
      ...invitationItems(),
      ...rooms.map((room) => {
        const title = state.title(room);
        const peer = room.peer(state.me);
        const online = peer ? state.presence.get(peer.userId) === true : false;
        const alerted = state.roomAlerts(room).length > 0;
        const last = [...room.messages].reverse().find((m) => !m.system);
        const preview = last
          ? last.content.type === "text"
            ? last.content.body
            : last.content.type === "file" || last.content.type === "pending-file"
              ? `file: ${last.content.type === "file" ? (last.content.file.name ?? "unnamed") : last.content.name}`
              : "unsupported message"
          : room.kind === "group"
            ? `${room.members.length} members`
            : "";
        return h(
          "li",
          {},
          h(
            "button",
            {
              type: "button",
              class: `room-item${room.id === state.current ? " active" : ""}`,
              testid: "room-item",
              data: { roomId: room.id, title },
              on: { click: () => chat.openRoom(room.id) },
            },
            peer
              ? h("span", {
                  class: `dot ${online ? "online" : "offline"}`,
                  testid: "presence",
                  data: { online: String(online) },
                  title: online ? "online" : "offline",
                  text: online ? "●" : "○",
                })
              : h("span", { class: "dot group", text: "#" }),
            h(
              "span",
              { class: "room-text" },
              h("span", { class: "room-title", text: title }),
              h("span", { class: "room-preview", text: preview }),
            ),
            alerted ? h("span", { class: "alert-mark", title: "identity key changed", text: "⚠" }) : null,
            room.unread > 0 ? h("span", { class: "badge", testid: "unread", text: String(room.unread) }) : null,
          ),
        );
      }),
    );
  };

  state.on("connection", drawConnection);
  state.on("rooms", drawList);
  state.on("presence", drawList);
  state.on("alerts", drawList);
  state.on("invitations", drawList);
  const onResize = () => chat.maybeMarkRead();
  window.addEventListener("resize", onResize);
  chat.onClose(() => window.removeEventListener("resize", onResize));
  drawConnection();
  drawList();
}
