//! Rooms and membership: create, list, details, owner rules, direct rooms under races, concurrent membership changes, verified-only members, account deletion handing rooms over.

use std::collections::BTreeSet;

use serde_json::json;
use sotto_core::api::ServerFrame;
use sotto_relay::events::Subscription;
use sotto_tests::{Backend, both_backends, spawn_app};
use uuid::Uuid;

use super::support::*;

both_backends!(
    rooms_and_membership,
    direct_rooms_are_one_per_pair_even_under_races,
    concurrent_membership_changes_stay_consistent,
    unverified_users_cannot_be_added,
    deleting_a_user_hands_rooms_over,
);

async fn rooms_and_membership(backend: Backend) {
    let app = spawn_app(backend).await;
    let u = app.users("rm", 4).await;
    app.acquaint(&u.iter().map(|a| a.id).collect::<Vec<_>>())
        .await;
    let (alice, bob, carol, dave) = (&u[0], &u[1], &u[2], &u[3]);
    let mut subs: Vec<Subscription> = u.iter().map(|a| subscribe(&app, a.id)).collect();
    let r = app
        .post(
            "/api/v1/rooms",
            Some(&alice.access),
            json!({"name": "  Team  ", "member_ids": [bob.id, alice.id, bob.id]}),
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.body["name"], "Team");
    assert_eq!(r.body["kind"], "group");
    assert_eq!(r.body["owner_id"], alice.id.to_string());
    assert_eq!(r.body["last_seq"], 0);
    assert_eq!(r.body["members"].as_array().unwrap().len(), 2);
    let room: Uuid = r.body["id"].as_str().unwrap().parse().unwrap();
    // The audience is the two members: Alice and Bob hear of it, Carol and Dave not.
    for sub in &mut subs[..2] {
        let ev = next_event(sub).await;
        assert!(matches!(
            *ev,
            ServerFrame::Room {
                change: sotto_core::api::RoomChange::Created,
                ..
            }
        ));
    }
    for sub in &mut subs[2..] {
        assert_eq!(sub.try_recv().unwrap(), None);
    }
    let rp = format!("/api/v1/rooms/{room}");

    // Listing and details.
    let r = app.get("/api/v1/rooms", Some(&bob.access)).await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 1, "{r:?}");
    assert_eq!(r.body["items"][0]["unread"], 0);
    assert!(
        app.get("/api/v1/rooms", Some(&carol.access)).await.body["items"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert_eq!(app.get(&rp, Some(&bob.access)).await.status, 200);
    app.get(&rp, Some(&carol.access))
        .await
        .problem(404, "not_a_member");
    app.get(
        &format!("/api/v1/rooms/{}", Uuid::new_v4()),
        Some(&carol.access),
    )
    .await
    .problem(404, "not_a_member");

    // Rename: owner only.
    app.req(
        "PATCH",
        &rp,
        Some(&bob.access),
        Some(json!({"name": "Mine"})),
    )
    .await
    .problem(403, "forbidden");
    let r = app
        .req(
            "PATCH",
            &rp,
            Some(&alice.access),
            Some(json!({"name": "Renamed"})),
        )
        .await;
    assert_eq!(r.body["name"], "Renamed", "{r:?}");

    // Members: owner adds; duplicates 409; unknown user 404; a member cannot add.
    let mp = format!("{rp}/members");
    app.post(&mp, Some(&bob.access), json!({"user_id": carol.id}))
        .await
        .problem(403, "forbidden");
    let r = app
        .post(&mp, Some(&alice.access), json!({"user_id": carol.id}))
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.body["user_id"], carol.id.to_string());
    assert_eq!(r.body["is_owner"], false);
    app.post(&mp, Some(&alice.access), json!({"user_id": carol.id}))
        .await
        .problem(409, "already_member");
    app.post(&mp, Some(&alice.access), json!({"user_id": Uuid::new_v4()}))
        .await
        .problem(404, "not_found");
    app.post(&mp, Some(&alice.access), json!({"user_id": dave.id}))
        .await;

    // Removing: a member removes only themself; the owner anyone.
    let r = app
        .req(
            "DELETE",
            &format!("{mp}/{}", dave.id),
            Some(&bob.access),
            None,
        )
        .await;
    r.problem(403, "forbidden");
    assert_eq!(
        app.req(
            "DELETE",
            &format!("{mp}/{}", dave.id),
            Some(&alice.access),
            None
        )
        .await
        .status,
        204
    );
    app.get(&rp, Some(&dave.access))
        .await
        .problem(404, "not_a_member");
    assert_eq!(
        app.req(
            "DELETE",
            &format!("{mp}/{}", carol.id),
            Some(&carol.access),
            None
        )
        .await
        .status,
        204
    );
    app.req(
        "DELETE",
        &format!("{mp}/{}", carol.id),
        Some(&alice.access),
        None,
    )
    .await
    .problem(404, "not_found");

    // The owner leaves: the longest-standing member (Bob) owns the room.
    assert_eq!(
        app.req(
            "DELETE",
            &format!("{mp}/{}", alice.id),
            Some(&alice.access),
            None
        )
        .await
        .status,
        204
    );
    let r = app.get(&rp, Some(&bob.access)).await;
    assert_eq!(r.body["owner_id"], bob.id.to_string(), "{r:?}");
    // The last member leaves: the room is gone.
    assert_eq!(
        app.req(
            "DELETE",
            &format!("{mp}/{}", bob.id),
            Some(&bob.access),
            None
        )
        .await
        .status,
        204
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM rooms", &[]).await, 0);

    // Delete: owner only.
    let room2 = app.room(alice, "two", &[bob.id]).await;
    let rp2 = format!("/api/v1/rooms/{room2}");
    app.req("DELETE", &rp2, Some(&bob.access), None)
        .await
        .problem(403, "forbidden");
    assert_eq!(
        app.req("DELETE", &rp2, Some(&alice.access), None)
            .await
            .status,
        204
    );
    app.get(&rp2, Some(&alice.access))
        .await
        .problem(404, "not_a_member");

    // Pagination over rooms.
    for i in 0..5 {
        app.room(carol, &format!("p{i}"), &[]).await;
    }
    let mut seen = BTreeSet::new();
    let mut cursor: Option<String> = None;
    loop {
        let q = cursor
            .as_ref()
            .map_or(String::new(), |c| format!("&cursor={c}"));
        let r = app
            .get(&format!("/api/v1/rooms?limit=2{q}"), Some(&carol.access))
            .await;
        for it in r.body["items"].as_array().unwrap() {
            assert!(seen.insert(it["id"].as_str().unwrap().to_string()));
        }
        match r.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.into()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 5);
}

async fn direct_rooms_are_one_per_pair_even_under_races(backend: Backend) {
    let app = std::sync::Arc::new(spawn_app(backend).await);
    let u = app.users("dm", 3).await;
    app.acquaint(&u.iter().map(|a| a.id).collect::<Vec<_>>())
        .await;
    let (a, b) = (u[0].clone(), u[1].clone());
    app.post(
        "/api/v1/rooms/direct",
        Some(&a.access),
        json!({"user_id": a.id}),
    )
    .await
    .problem(400, "cannot_target_self");
    app.post(
        "/api/v1/rooms/direct",
        Some(&a.access),
        json!({"user_id": Uuid::new_v4()}),
    )
    .await
    .problem(404, "not_found");
    let mut tasks = Vec::new();
    for i in 0..16 {
        let app = app.clone();
        let (me, other) = if i % 2 == 0 {
            (a.clone(), b.id)
        } else {
            (b.clone(), a.id)
        };
        tasks.push(tokio::spawn(async move {
            let r = app
                .post(
                    "/api/v1/rooms/direct",
                    Some(&me.access),
                    json!({"user_id": other}),
                )
                .await;
            assert!(r.status == 200 || r.status == 201, "{r:?}");
            (r.status, r.body["id"].as_str().unwrap().to_string())
        }));
    }
    let mut ids = BTreeSet::new();
    let mut created = 0;
    for t in tasks {
        let (status, id) = t.await.unwrap();
        created += usize::from(status == 201);
        ids.insert(id);
    }
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(created, 1);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM rooms WHERE kind = 'direct'", &[])
            .await,
        1
    );
    let id = ids.into_iter().next().unwrap();
    let r = app
        .get(&format!("/api/v1/rooms/{id}"), Some(&b.access))
        .await;
    assert_eq!(r.body["kind"], "direct");
    assert_eq!(r.body["members"].as_array().unwrap().len(), 2);
    // Membership and name of a direct room are fixed.
    let owner = if r.body["owner_id"] == a.id.to_string() {
        &a
    } else {
        &b
    };
    app.post(
        &format!("/api/v1/rooms/{id}/members"),
        Some(&owner.access),
        json!({"user_id": u[2].id}),
    )
    .await
    .problem(400, "direct_room");
    app.req(
        "PATCH",
        &format!("/api/v1/rooms/{id}"),
        Some(&owner.access),
        Some(json!({"name": "x"})),
    )
    .await
    .problem(400, "direct_room");
    app.req(
        "DELETE",
        &format!("/api/v1/rooms/{id}/members/{}", a.id),
        Some(&a.access),
        None,
    )
    .await
    .problem(400, "direct_room");
    // Either member may delete a direct room; the opener has no other powers.
    let other = if owner.id == a.id { &b } else { &a };
    let r = app
        .req(
            "DELETE",
            &format!("/api/v1/rooms/{id}"),
            Some(&other.access),
            None,
        )
        .await;
    assert_eq!(r.status, 204, "{r:?}");
    let r = app
        .post(
            "/api/v1/rooms/direct",
            Some(&a.access),
            json!({"user_id": b.id}),
        )
        .await;
    assert_eq!(r.status, 201, "a new direct room after deletion: {r:?}");
}

async fn concurrent_membership_changes_stay_consistent(backend: Backend) {
    let app = std::sync::Arc::new(spawn_app(backend).await);
    let u = app.users("leave", 8).await;
    app.acquaint(&u.iter().map(|a| a.id).collect::<Vec<_>>())
        .await;
    let others: Vec<Uuid> = u[1..].iter().map(|a| a.id).collect();
    // Everyone leaves at once, the owner included: the room ends deleted, no 500.
    let room = app.room(&u[0], "r", &others).await;
    let mut tasks = Vec::new();
    for a in u.clone() {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            app.req(
                "DELETE",
                &format!("/api/v1/rooms/{room}/members/{}", a.id),
                Some(&a.access),
                None,
            )
            .await
            .status
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 204);
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM rooms", &[]).await, 0);
    assert_eq!(app.count("SELECT COUNT(*) FROM room_members", &[]).await, 0);

    // The owner and half the members leave at once: the owner is a remaining member.
    let room = app.room(&u[0], "r2", &others).await;
    let mut tasks = Vec::new();
    for a in u[..4].iter().cloned() {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            app.req(
                "DELETE",
                &format!("/api/v1/rooms/{room}/members/{}", a.id),
                Some(&a.access),
                None,
            )
            .await
            .status
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 204);
    }
    let r = app
        .get(&format!("/api/v1/rooms/{room}"), Some(&u[7].access))
        .await;
    let members: Vec<String> = r.body["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["user_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(members.len(), 4);
    assert!(
        members.contains(&r.body["owner_id"].as_str().unwrap().to_string()),
        "{r:?}"
    );
    assert_eq!(
        r.body["owner_id"],
        u[4].id.to_string(),
        "the longest-standing member"
    );

    // Concurrent adds of the same user: one 201, the rest 409.
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let (app, owner, target) = (app.clone(), u[4].clone(), u[0].id);
        tasks.push(tokio::spawn(async move {
            app.post(
                &format!("/api/v1/rooms/{room}/members"),
                Some(&owner.access),
                json!({"user_id": target}),
            )
            .await
            .status
        }));
    }
    let mut codes = Vec::new();
    for t in tasks {
        codes.push(t.await.unwrap());
    }
    codes.sort_unstable();
    assert_eq!(codes, vec![201, 409, 409, 409, 409, 409]);
}

async fn unverified_users_cannot_be_added(backend: Backend) {
    let app = spawn_app(backend).await;
    let u = app.users("ver", 1).await;
    let alice = &u[0];
    let r = app
        .post(
            "/api/v1/auth/register",
            None,
            json!({"username": "pending", "email": "pending@example.org", "password": sotto_tests::PASSWORD}),
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    let pending: Uuid = app
        .texts("SELECT CAST(id AS TEXT) FROM users WHERE username = 'pending'")
        .await[0]
        .parse()
        .unwrap();
    // Unverified accounts are answered exactly like unknown ones.
    for target in [pending, Uuid::new_v4()] {
        app.post(
            "/api/v1/rooms/direct",
            Some(&alice.access),
            json!({"user_id": target}),
        )
        .await
        .problem(404, "not_found");
        app.post(
            "/api/v1/contacts",
            Some(&alice.access),
            json!({"user_id": target}),
        )
        .await
        .problem(404, "not_found");
        app.post(
            "/api/v1/rooms",
            Some(&alice.access),
            json!({"name": "x", "member_ids": [target]}),
        )
        .await
        .problem(400, "validation_failed");
    }
    let room = app.room(alice, "r", &[]).await;
    app.post(
        &format!("/api/v1/rooms/{room}/members"),
        Some(&alice.access),
        json!({"user_id": pending}),
    )
    .await
    .problem(404, "not_found");
}

async fn deleting_a_user_hands_rooms_over(backend: Backend) {
    let app = spawn_app(backend).await;
    let u = app.users("del", 3).await;
    app.acquaint(&u.iter().map(|a| a.id).collect::<Vec<_>>())
        .await;
    let (alice, bob, carol) = (&u[0], &u[1], &u[2]);
    let shared = app.room(alice, "shared", &[bob.id, carol.id]).await;
    let alone = app.room(alice, "alone", &[]).await;
    let master = app.master().await;
    let r = app
        .req(
            "DELETE",
            &format!("/api/v1/users/{}", alice.id),
            Some(&master.access),
            None,
        )
        .await;
    assert_eq!(r.status, 204, "{r:?}");
    let r = app
        .get(&format!("/api/v1/rooms/{shared}"), Some(&bob.access))
        .await;
    assert_eq!(r.body["owner_id"], bob.id.to_string(), "{r:?}");
    assert_eq!(r.body["members"].as_array().unwrap().len(), 2);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM rooms WHERE id = $1", &[alone])
            .await,
        0
    );
    // Bob, the new owner, can manage the room.
    let r = app
        .req(
            "PATCH",
            &format!("/api/v1/rooms/{shared}"),
            Some(&bob.access),
            Some(json!({"name": "ours"})),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
}
