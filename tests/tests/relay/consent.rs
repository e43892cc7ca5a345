//! Consent before membership (`docs/relay.md`, "Consent: invitations and
//! blocks"): contacts are added at once, anyone else is invited and is not a
//! member (no events, no messages, no presence) until they accept; blocks stop
//! invitations, direct rooms, posts in a shared direct room, presence and
//! typing between the two; the caps and rates on rooms and invitations. All
//! through the API, both backends.

use std::time::Duration;

use serde_json::{Value, json};
use sotto_core::api::ServerFrame;
use sotto_core::api::invitations::{Invitation, InvitationChange};
use sotto_core::api::pagination::Page;
use sotto_core::api::rooms::{RoomChange, RoomDetails};
use sotto_core::api::ws::ClientFrame;
use sotto_core::encoding::B64;
use sotto_tests::{
    AppOptions, Backend, Member, TestApp, Ws, both_backends, spawn_app, spawn_app_with,
};
use uuid::Uuid;

both_backends!(
    contacts_join_at_once_others_are_invited_until_they_accept,
    direct_rooms_with_strangers_are_invitations,
    declined_and_withdrawn_invitations_are_gone,
    blocks_stop_invitations_direct_rooms_presence_and_typing,
    caps_and_rates_on_rooms_and_invitations,
    a_room_view_is_one_snapshot_while_an_invitation_is_accepted,
    an_invitation_withdrawn_while_it_is_accepted_never_fails,
    a_block_racing_an_invitation_leaves_none,
);

async fn contact(app: &TestApp, owner: &Member, other: Uuid) {
    let r = app
        .post(
            "/api/v1/contacts",
            Some(owner.token()),
            json!({"user_id": other}),
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
}

/// `POST /api/v1/rooms/direct` from `from` to `to`, answered `status`.
async fn direct(app: &TestApp, from: &Member, to: &Member, status: u16) -> RoomDetails {
    app.post(
        "/api/v1/rooms/direct",
        Some(from.token()),
        json!({"user_id": to.id()}),
    )
    .await
    .typed(status)
}

/// The room's `member_epoch` as member `who` sees it.
async fn member_epoch(app: &TestApp, who: &Member, room: Uuid) -> u64 {
    let d: RoomDetails = app
        .get(&format!("/api/v1/rooms/{room}"), Some(who.token()))
        .await
        .typed(200);
    d.room.member_epoch
}

async fn invitations(app: &TestApp, who: &Member) -> Vec<Invitation> {
    let page: Page<Invitation> = app
        .get("/api/v1/invitations", Some(who.token()))
        .await
        .typed(200);
    page.items
}

/// `owner` invites `who` to `room` (not a contact: an invitation, 202); its id.
async fn invite(app: &TestApp, room: Uuid, owner: &Member, who: &Member) -> Uuid {
    let r = app
        .post(
            &format!("/api/v1/rooms/{room}/members"),
            Some(owner.token()),
            json!({"user_id": who.id()}),
        )
        .await;
    assert_eq!(r.status, 202, "{r:?}");
    invitations(app, who).await[0].id
}

/// Frames `ws` receives within `wait` that `want` selects (to show one does
/// NOT arrive).
async fn frames_within(
    ws: &mut Ws,
    wait: Duration,
    want: impl Fn(&ServerFrame) -> bool,
) -> Vec<ServerFrame> {
    let until = tokio::time::Instant::now() + wait;
    let mut out = Vec::new();
    loop {
        let left = until.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            return out;
        }
        match ws.try_next(left).await {
            Some(f) if want(&f) => out.push(f),
            Some(_) => {}
            None => return out,
        }
    }
}

fn post_frame(m: &Member, room: Uuid, text: &[u8], to: &[&Member]) -> (Uuid, ClientFrame) {
    let to: Vec<_> = to.iter().map(|x| x.verified()).collect();
    let (cid, env) = m.seal(room, text, &to);
    (
        cid,
        ClientFrame::Send {
            room_id: room,
            client_id: cid,
            envelope: B64(env),
        },
    )
}

async fn contacts_join_at_once_others_are_invited_until_they_accept(backend: Backend) {
    let app = spawn_app(backend).await;
    let m = app.members("cons", 3).await;
    let (alice, bob, carol) = (&m[0], &m[1], &m[2]);
    // Bob knows Alice; Carol does not.
    contact(&app, bob, alice.id()).await;
    let mut carol_ws = app.ws(carol.token()).await;
    let mut alice_ws = app.ws(alice.token()).await;
    let details: RoomDetails = app
        .post(
            "/api/v1/rooms",
            Some(alice.token()),
            json!({"name": "team", "member_ids": [bob.id(), carol.id()]}),
        )
        .await
        .typed(201);
    let room = details.room.id;
    let members: Vec<Uuid> = details.members.iter().map(|x| x.user_id).collect();
    assert_eq!(members.len(), 2);
    assert!(members.contains(&alice.id()) && members.contains(&bob.id()));
    assert_eq!(details.invited.len(), 1);
    assert_eq!(details.invited[0].user_id, carol.id());
    assert_eq!(details.invited[0].invited_by, alice.id());

    // Carol is told of the invitation, and only that: the room is not hers.
    let f = carol_ws
        .next_where(|f| matches!(f, ServerFrame::Invitation { .. }))
        .await;
    let ServerFrame::Invitation {
        invitation_id,
        room_id,
        change,
    } = f
    else {
        unreachable!()
    };
    assert_eq!((room_id, change), (room, InvitationChange::Received));
    app.get(&format!("/api/v1/rooms/{room}"), Some(carol.token()))
        .await
        .problem(404, "not_a_member");
    app.get(
        &format!("/api/v1/rooms/{room}/messages"),
        Some(carol.token()),
    )
    .await
    .problem(404, "not_a_member");
    let list = invitations(&app, carol).await;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].id, invitation_id);
    assert_eq!(list[0].room_name, "team");
    assert_eq!(list[0].inviter.id, alice.id());
    // No keys go her way: she is no member, so not in `members`; and posts to
    // the room are not hers to see.
    let (_, send) = post_frame(alice, room, b"before carol joins", &[alice, bob]);
    alice_ws.send(&send).await;
    alice_ws
        .next_where(|f| matches!(f, ServerFrame::Ack { .. }))
        .await;
    // Alice sees no presence of Carol, Carol none of Alice (not peers yet).
    let seen = frames_within(&mut carol_ws, Duration::from_millis(800), |f| {
        matches!(
            f,
            ServerFrame::Message { .. } | ServerFrame::Presence { .. } | ServerFrame::Room { .. }
        )
    })
    .await;
    assert!(seen.is_empty(), "an invitee heard {seen:?}");
    let seen = frames_within(
        &mut alice_ws,
        Duration::from_millis(300),
        |f| matches!(f, ServerFrame::Presence { user_id, .. } if *user_id == carol.id()),
    )
    .await;
    assert!(
        seen.is_empty(),
        "the inviter saw the invitee's presence: {seen:?}"
    );

    // She accepts: a member from now on, her history starting here.
    let joined: RoomDetails = app
        .post(
            &format!("/api/v1/invitations/{invitation_id}/accept"),
            Some(carol.token()),
            json!({}),
        )
        .await
        .typed(200);
    assert!(joined.members.iter().any(|x| x.user_id == carol.id()));
    assert!(joined.invited.is_empty());
    assert!(invitations(&app, carol).await.is_empty());
    let f = alice_ws
        .next_where(|f| matches!(f, ServerFrame::Room { .. }))
        .await;
    assert_eq!(
        f,
        ServerFrame::Room {
            room_id: room,
            change: RoomChange::MemberAdded
        }
    );
    // Now they are peers: each hears the other is online.
    alice_ws
        .next_where(|f| matches!(f, ServerFrame::Presence { user_id, online: true } if *user_id == carol.id()))
        .await;
    let history = app.history(&carol.account, room, 0, 50).await;
    assert!(
        history.items.is_empty(),
        "history before acceptance: {history:?}"
    );
    let (cid, send) = post_frame(alice, room, b"after carol joins", &[alice, bob, carol]);
    alice_ws.send(&send).await;
    let f = carol_ws
        .next_where(|f| matches!(f, ServerFrame::Message { .. }))
        .await;
    let ServerFrame::Message { seq, .. } = f else {
        unreachable!()
    };
    assert_eq!(seq, 2);
    let _ = cid;
    // Accepting twice, or someone else's invitation: 404.
    app.post(
        &format!("/api/v1/invitations/{invitation_id}/accept"),
        Some(carol.token()),
        json!({}),
    )
    .await
    .problem(404, "not_found");
}

async fn direct_rooms_with_strangers_are_invitations(backend: Backend) {
    let app = spawn_app(backend).await;
    let m = app.members("dmc", 3).await;
    let (alice, bob, carol) = (&m[0], &m[1], &m[2]);
    // A stranger: Bob is invited, the room holds Alice only.
    let r: RoomDetails = direct(&app, alice, bob, 201).await;
    let room = r.room.id;
    assert_eq!(r.members.len(), 1);
    assert_eq!(r.invited.len(), 1);
    assert_eq!(r.invited[0].user_id, bob.id());
    // Asking again changes nothing.
    let again: RoomDetails = direct(&app, alice, bob, 200).await;
    assert_eq!(again.room.id, room);
    assert_eq!(again.invited.len(), 1);
    // Bob opening the direct room with Alice is his consent: he joins it.
    let joined: RoomDetails = direct(&app, bob, alice, 200).await;
    assert_eq!(joined.room.id, room);
    assert_eq!(joined.members.len(), 2);
    assert!(joined.invited.is_empty());
    assert!(invitations(&app, bob).await.is_empty());
    // With a contact, the direct room has both at once.
    contact(&app, carol, alice.id()).await;
    let r: RoomDetails = direct(&app, alice, carol, 201).await;
    assert_eq!(r.members.len(), 2);
    assert!(r.invited.is_empty());
}

async fn declined_and_withdrawn_invitations_are_gone(backend: Backend) {
    let app = spawn_app(backend).await;
    let m = app.members("dec", 3).await;
    let (alice, bob, carol) = (&m[0], &m[1], &m[2]);
    let room = app.room(&alice.account, "r", &[]).await;
    let mut alice_ws = app.ws(alice.token()).await;
    // Every change of the room's invitations raises its `member_epoch`
    // (clients order the room views they fetch by it).
    let epoch = || member_epoch(&app, alice, room);
    let e0 = epoch().await;
    let invite = |who: Uuid| {
        let app = &app;
        async move {
            app.post(
                &format!("/api/v1/rooms/{room}/members"),
                Some(alice.token()),
                json!({"user_id": who}),
            )
            .await
        }
    };
    let r = invite(bob.id()).await;
    assert_eq!(r.status, 202, "{r:?}");
    assert_eq!(r.body["user_id"], bob.id().to_string());
    assert_eq!(r.body["invited_by"], alice.id().to_string());
    assert_eq!(
        alice_ws
            .next_where(|f| matches!(f, ServerFrame::Room { .. }))
            .await,
        ServerFrame::Room {
            room_id: room,
            change: RoomChange::MemberInvited
        }
    );
    let e1 = epoch().await;
    assert!(e1 > e0, "invited: {e0} → {e1}");
    invite(bob.id()).await.problem(409, "already_invited");
    // Bob declines: gone; the room's members hear that an invitation went.
    let inv = invitations(&app, bob).await[0].id;
    let mut bob_ws = app.ws(bob.token()).await;
    let r = app
        .post(
            &format!("/api/v1/invitations/{inv}/decline"),
            Some(bob.token()),
            json!({}),
        )
        .await;
    assert_eq!(r.status, 204, "{r:?}");
    assert_eq!(
        bob_ws
            .next_where(|f| matches!(f, ServerFrame::Invitation { .. }))
            .await,
        ServerFrame::Invitation {
            invitation_id: inv,
            room_id: room,
            change: InvitationChange::Removed
        }
    );
    assert_eq!(
        alice_ws
            .next_where(|f| matches!(f, ServerFrame::Room { .. }))
            .await,
        ServerFrame::Room {
            room_id: room,
            change: RoomChange::InvitationRemoved
        }
    );
    let d: RoomDetails = app
        .get(&format!("/api/v1/rooms/{room}"), Some(alice.token()))
        .await
        .typed(200);
    assert!(d.invited.is_empty());
    let e2 = d.room.member_epoch;
    assert!(e2 > e1, "declined: {e1} → {e2}");
    // The owner withdraws a pending one.
    assert_eq!(invite(carol.id()).await.status, 202);
    let e3 = epoch().await;
    let mut carol_ws = app.ws(carol.token()).await;
    let r = app
        .req(
            "DELETE",
            &format!("/api/v1/rooms/{room}/members/{}", carol.id()),
            Some(alice.token()),
            None,
        )
        .await;
    assert_eq!(r.status, 204);
    assert!(matches!(
        carol_ws
            .next_where(|f| matches!(f, ServerFrame::Invitation { .. }))
            .await,
        ServerFrame::Invitation {
            change: InvitationChange::Removed,
            ..
        }
    ));
    assert!(invitations(&app, carol).await.is_empty());
    let e4 = epoch().await;
    assert!(e4 > e3 && e3 > e2, "withdrawn: {e2} → {e3} → {e4}");
    // A deleted room takes its invitations along.
    assert_eq!(invite(carol.id()).await.status, 202);
    let r = app
        .req(
            "DELETE",
            &format!("/api/v1/rooms/{room}"),
            Some(alice.token()),
            None,
        )
        .await;
    assert_eq!(r.status, 204);
    assert!(invitations(&app, carol).await.is_empty());
}

async fn blocks_stop_invitations_direct_rooms_presence_and_typing(backend: Backend) {
    let app = spawn_app(backend).await;
    let m = app.members("blk", 3).await;
    let (alice, bob, carol) = (&m[0], &m[1], &m[2]);
    app.acquaint(&[alice.id(), bob.id(), carol.id()]).await;
    let group = app
        .room(&alice.account, "all three", &[bob.id(), carol.id()])
        .await;
    let direct: RoomDetails = direct(&app, alice, bob, 201).await;
    let direct = direct.room.id;
    let mut a = app.ws(alice.token()).await;
    let mut b = app.ws(bob.token()).await;
    let mut c = app.ws(carol.token()).await;
    // A pending invitation of Bob's (a room he is not in yet) goes with the block.
    app.exec("DELETE FROM contacts WHERE owner_id = $1", &[bob.id()])
        .await;
    let other = app.room(&alice.account, "other", &[]).await;
    assert_eq!(
        app.post(
            &format!("/api/v1/rooms/{other}/members"),
            Some(alice.token()),
            json!({"user_id": bob.id()})
        )
        .await
        .status,
        202
    );
    let other_epoch = || member_epoch(&app, alice, other);
    let before_block = other_epoch().await;
    // Bob blocks Alice.
    let r = app
        .post(
            "/api/v1/blocks",
            Some(bob.token()),
            json!({"user_id": alice.id()}),
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.body["user"]["id"], alice.id().to_string());
    let again = app
        .post(
            "/api/v1/blocks",
            Some(bob.token()),
            json!({"user_id": alice.id()}),
        )
        .await;
    assert_eq!(again.status, 200);
    let list: Page<Value> = app
        .get("/api/v1/blocks", Some(bob.token()))
        .await
        .typed(200);
    assert_eq!(list.items.len(), 1);
    assert!(invitations(&app, bob).await.is_empty());
    assert!(
        other_epoch().await > before_block,
        "the invitation the block took raised the room's member_epoch"
    );
    // Each is told the other is offline now.
    a.next_where(
        |f| matches!(f, ServerFrame::Presence { user_id, online: false } if *user_id == bob.id()),
    )
    .await;
    b.next_where(
        |f| matches!(f, ServerFrame::Presence { user_id, online: false } if *user_id == alice.id()),
    )
    .await;
    // Typing in the shared group: Carol hears Alice, Bob does not; Alice does
    // not hear Bob.
    a.send(&ClientFrame::Typing {
        room_id: group,
        active: true,
    })
    .await;
    c.next_where(|f| matches!(f, ServerFrame::Typing { user_id, .. } if *user_id == alice.id()))
        .await;
    b.send(&ClientFrame::Typing {
        room_id: group,
        active: true,
    })
    .await;
    c.next_where(|f| matches!(f, ServerFrame::Typing { user_id, .. } if *user_id == bob.id()))
        .await;
    let heard = frames_within(&mut b, Duration::from_millis(500), |f| {
        matches!(f, ServerFrame::Typing { user_id, .. } | ServerFrame::Presence { user_id, .. } if *user_id == alice.id())
    })
    .await;
    assert!(heard.is_empty(), "Bob heard Alice: {heard:?}");
    let heard = frames_within(&mut a, Duration::from_millis(300), |f| {
        matches!(f, ServerFrame::Typing { user_id, .. } | ServerFrame::Presence { user_id, .. } if *user_id == bob.id())
    })
    .await;
    assert!(heard.is_empty(), "Alice heard Bob: {heard:?}");
    // A new socket of Bob's is not told Alice is online (Carol, yes).
    let mut b2 = app.ws(bob.token()).await;
    let online = frames_within(&mut b2, Duration::from_millis(500), |f| {
        matches!(f, ServerFrame::Presence { online: true, .. })
    })
    .await;
    assert_eq!(
        online,
        vec![ServerFrame::Presence {
            user_id: carol.id(),
            online: true
        }]
    );
    // No invitations, no direct room, no posts into their direct room (either
    // way); the shared group still works for both.
    app.post(
        &format!("/api/v1/rooms/{other}/members"),
        Some(alice.token()),
        json!({"user_id": bob.id()}),
    )
    .await
    .problem(403, "blocked");
    app.post(
        "/api/v1/rooms",
        Some(alice.token()),
        json!({"name": "x", "member_ids": [bob.id()]}),
    )
    .await
    .problem(403, "blocked");
    app.post(
        "/api/v1/rooms/direct",
        Some(bob.token()),
        json!({"user_id": alice.id()}),
    )
    .await
    .problem(403, "blocked");
    for (from, to) in [(alice, bob), (bob, alice)] {
        let (cid, env) = from.seal(direct, b"blocked", &[from.verified(), to.verified()]);
        let r = app.send(from, direct, cid, &env).await;
        r.problem(403, "blocked");
    }
    let (cid, env) = alice.seal(
        group,
        b"group goes on",
        &[alice.verified(), bob.verified(), carol.verified()],
    );
    assert_eq!(app.send(alice, group, cid, &env).await.status, 201);
    // Unblocked: the direct room works again.
    let r = app
        .req(
            "DELETE",
            &format!("/api/v1/blocks/{}", alice.id()),
            Some(bob.token()),
            None,
        )
        .await;
    assert_eq!(r.status, 204);
    let r = app
        .req(
            "DELETE",
            &format!("/api/v1/blocks/{}", alice.id()),
            Some(bob.token()),
            None,
        )
        .await;
    r.problem(404, "not_found");
    let (cid, env) = bob.seal(
        direct,
        b"talking again",
        &[alice.verified(), bob.verified()],
    );
    assert_eq!(app.send(bob, direct, cid, &env).await.status, 201);
    // Blocking yourself or nobody.
    app.post(
        "/api/v1/blocks",
        Some(bob.token()),
        json!({"user_id": bob.id()}),
    )
    .await
    .problem(400, "cannot_target_self");
    app.post(
        "/api/v1/blocks",
        Some(bob.token()),
        json!({"user_id": Uuid::new_v4()}),
    )
    .await
    .problem(404, "not_found");
}

async fn caps_and_rates_on_rooms_and_invitations(backend: Backend) {
    let app = spawn_app_with(
        backend,
        AppOptions::default().with_config(|c| {
            c.max_rooms_per_user = 3;
            c.max_room_members = 4;
            c.max_open_invitations = 2;
            c.max_pending_invitations = 2;
            c.room_create_rate = 5;
            c.invite_rate = 3;
        }),
    )
    .await;
    let m = app.members("cap", 6).await;
    let alice = &m[0];
    // Open invitations per inviter: 2.
    let room = app.room(&alice.account, "r", &[]).await;
    let invite = |room: Uuid, who: Uuid| {
        let app = &app;
        async move {
            app.post(
                &format!("/api/v1/rooms/{room}/members"),
                Some(alice.token()),
                json!({"user_id": who}),
            )
            .await
        }
    };
    assert_eq!(invite(room, m[1].id()).await.status, 202);
    assert_eq!(invite(room, m[2].id()).await.status, 202);
    invite(room, m[3].id()).await.problem(409, "limit_reached");
    // Members per room, invitations included: 4 (Alice and two invitees, one more).
    app.befriend(m[3].id(), alice.id()).await;
    app.befriend(m[4].id(), alice.id()).await;
    let r = invite(room, m[3].id()).await;
    assert_eq!(r.status, 201, "{r:?}");
    invite(room, m[4].id()).await.problem(409, "limit_reached");
    // Invitations per minute: 3 (two made above, one refused by the cap
    // after it was counted).
    let room2 = app.room(&alice.account, "r2", &[]).await;
    let r = invite(room2, m[5].id()).await;
    assert_eq!(r.status, 429, "{r:?}");
    r.problem(429, "rate_limited");
    assert!(r.headers.get("retry-after").is_some());
    // Rooms per user: 3 (r, r2, and one more).
    let _r3 = app.room(&alice.account, "r3", &[]).await;
    app.post("/api/v1/rooms", Some(alice.token()), json!({"name": "r4"}))
        .await
        .problem(409, "limit_reached");
    // Room creations per minute: 5 (r, r2, r3, and the refused r4 counted).
    let bob = &m[1];
    for i in 0..5 {
        let r = app
            .post(
                "/api/v1/rooms",
                Some(bob.token()),
                json!({"name": format!("b{i}")}),
            )
            .await;
        let want = if i < 3 { 201 } else { 409 };
        assert_eq!(r.status, want, "{i}: {r:?}");
    }
    let r = app
        .post("/api/v1/rooms", Some(bob.token()), json!({"name": "b5"}))
        .await;
    r.problem(429, "rate_limited");
    // Pending invitations per invitee: 2 (Bob has one from Alice).
    let carol = &m[2];
    let c1 = app.room(&m[3].account, "c1", &[]).await;
    let _ = carol;
    let r = app
        .post(
            &format!("/api/v1/rooms/{c1}/members"),
            Some(m[3].token()),
            json!({"user_id": bob.id()}),
        )
        .await;
    assert_eq!(r.status, 202, "{r:?}");
    let c2 = app.room(&m[4].account, "c2", &[]).await;
    app.post(
        &format!("/api/v1/rooms/{c2}/members"),
        Some(m[4].token()),
        json!({"user_id": bob.id()}),
    )
    .await
    .problem(409, "limit_reached");
    // Bob, in 3 rooms already, cannot accept one more.
    let inv = invitations(&app, bob).await;
    assert_eq!(inv.len(), 2);
    app.post(
        &format!("/api/v1/invitations/{}/accept", inv[0].id),
        Some(bob.token()),
        json!({}),
    )
    .await
    .problem(409, "limit_reached");
    // The refused acceptance kept the invitation.
    assert_eq!(invitations(&app, bob).await.len(), 2);
}

/// `GET /rooms/{id}` is one snapshot: read while an invitation is accepted,
/// every view lists the invitee as invited or as a member, never neither (a
/// client signs membership statements from these views: torn across the
/// acceptance, it would sign the new member out). Rounds of reads racing an
/// acceptance; the torn read this guards against was a window of two queries.
async fn a_room_view_is_one_snapshot_while_an_invitation_is_accepted(backend: Backend) {
    let app = spawn_app_with(
        backend,
        AppOptions::default().with_config(|c| c.invite_rate = 1000),
    )
    .await;
    let m = app.members("snap", 2).await;
    let (alice, bob) = (&m[0], &m[1]);
    let room = app.room(&alice.account, "r", &[]).await;
    let view = || async {
        let d: RoomDetails = app
            .get(&format!("/api/v1/rooms/{room}"), Some(alice.token()))
            .await
            .typed(200);
        d
    };
    for round in 0..15 {
        let inv = invite(&app, room, alice, bob).await;
        let reads = async {
            let mut views = Vec::new();
            for _ in 0..25 {
                views.push(view().await);
            }
            views
        };
        let accept = async {
            tokio::time::sleep(Duration::from_millis(2)).await;
            app.post(
                &format!("/api/v1/invitations/{inv}/accept"),
                Some(bob.token()),
                json!({}),
            )
            .await
        };
        let (views, accepted) = tokio::join!(reads, accept);
        assert_eq!(accepted.status, 200, "{accepted:?}");
        for d in &views {
            let member = d.members.iter().any(|x| x.user_id == bob.id());
            let invited = d.invited.iter().any(|x| x.user_id == bob.id());
            assert!(
                member != invited,
                "round {round}: a torn view at epoch {}: member {member}, invited {invited}",
                d.room.member_epoch
            );
        }
        let r = app
            .req(
                "DELETE",
                &format!("/api/v1/rooms/{room}/members/{}", bob.id()),
                Some(alice.token()),
                None,
            )
            .await;
        assert_eq!(r.status, 204, "{r:?}");
    }
}

/// The owner withdraws an invitation while the invitee accepts it, at once,
/// round after round. Every path locks the room before it takes an
/// invitation (one order): on PostgreSQL, accepting used to take the
/// invitation first and then lock the room, the opposite of a withdrawal,
/// and the two could deadlock (one aborted with an error). Now the
/// withdrawal always succeeds, the acceptance succeeds (and the member is
/// then removed) or finds the invitation gone, and neither is an error.
async fn an_invitation_withdrawn_while_it_is_accepted_never_fails(backend: Backend) {
    let app = spawn_app_with(
        backend,
        AppOptions::default().with_config(|c| c.invite_rate = 1000),
    )
    .await;
    let m = app.members("race", 2).await;
    let (alice, bob) = (&m[0], &m[1]);
    let room = app.room(&alice.account, "r", &[]).await;
    for round in 0..20 {
        let inv = invite(&app, room, alice, bob).await;
        let (member, accept) = (
            format!("/api/v1/rooms/{room}/members/{}", bob.id()),
            format!("/api/v1/invitations/{inv}/accept"),
        );
        let withdraw = app.req("DELETE", &member, Some(alice.token()), None);
        let accept = app.post(&accept, Some(bob.token()), json!({}));
        let (withdrawn, accepted) = tokio::join!(withdraw, accept);
        assert_eq!(withdrawn.status, 204, "round {round}: {withdrawn:?}");
        assert!(
            accepted.status == 200 || accepted.status == 404,
            "round {round}: {accepted:?}"
        );
        // Either way Bob ends neither a member nor invited.
        let d: RoomDetails = app
            .get(&format!("/api/v1/rooms/{room}"), Some(alice.token()))
            .await
            .typed(200);
        assert!(
            !d.members.iter().any(|x| x.user_id == bob.id()),
            "round {round}"
        );
        assert!(invitations(&app, bob).await.is_empty(), "round {round}");
    }
}

/// Bob blocks Alice while she invites him, at once, round after round: into
/// her group room, by opening their direct room, and by creating a room with
/// him. Whichever goes first,
/// no invitation between them survives: the block removes one made before
/// it, and refuses one after it. On PostgreSQL an invitation whose block
/// check ran before the block committed, and which committed after the block
/// read the invitations between the two, used to survive it; now a block
/// takes both users' locks and every path that invites or adds takes the
/// acting user's, before anything else.
async fn a_block_racing_an_invitation_leaves_none(backend: Backend) {
    let app = spawn_app_with(
        backend,
        AppOptions::default().with_config(|c| {
            c.invite_rate = 1000;
            c.room_create_rate = 1000;
            c.contact_rate = 1000;
        }),
    )
    .await;
    let m = app.members("blockrace", 2).await;
    let (alice, bob) = (&m[0], &m[1]);
    let room = app.room(&alice.account, "r", &[]).await;
    for round in 0..45 {
        let (path, body) = match round % 3 {
            0 => (
                format!("/api/v1/rooms/{room}/members"),
                json!({"user_id": bob.id()}),
            ),
            1 => (
                "/api/v1/rooms/direct".to_owned(),
                json!({"user_id": bob.id()}),
            ),
            _ => (
                "/api/v1/rooms".to_owned(),
                json!({"name": format!("r{round}"), "member_ids": [bob.id()]}),
            ),
        };
        let invite = app.post(&path, Some(alice.token()), body);
        let block = app.post(
            "/api/v1/blocks",
            Some(bob.token()),
            json!({"user_id": alice.id()}),
        );
        let (invited, blocked) = tokio::join!(invite, block);
        assert_eq!(blocked.status, 201, "round {round}: {blocked:?}");
        assert!(
            [200, 201, 202, 403].contains(&invited.status),
            "round {round}: {invited:?}"
        );
        let left = invitations(&app, bob).await;
        assert!(
            left.is_empty(),
            "round {round}: an invitation survived the block ({} answered {})",
            match round % 3 {
                0 => "the invitation",
                1 => "the direct room",
                _ => "the new room",
            },
            invited.status
        );
        let r = app
            .req(
                "DELETE",
                &format!("/api/v1/blocks/{}", alice.id()),
                Some(bob.token()),
                None,
            )
            .await;
        assert_eq!(r.status, 204, "round {round}: {r:?}");
    }
}
