//! A complete native Sotto client in one file (docs/client.md, "Build a native
//! client"): log in, set this device up, say hello to a peer in your direct
//! room, and print their answer.
//!
//! ```sh
//! SOTTO_PASSWORD='…' cargo run -p sotto-client --example quickstart -- http://127.0.0.1:8080 alice bob
//! ```

use std::path::Path;
use std::sync::Arc;

use sotto_client::sotto_core::api::{RoomChange, UserSearchQuery};
use sotto_client::{Client, Content, DeviceSetup, Event, Session, SessionOptions, SqliteStore};

type AnyError = Box<dyn std::error::Error + Send + Sync>;

/// Logs `username` in at `relay`, greets `peer` and returns their first answer.
pub async fn run(
    relay: &str,
    username: &str,
    password: &str,
    peer: &str,
    store: &Path,
) -> Result<String, AnyError> {
    // 1. Log in. (New users first call `client.register(...)`, then
    //    `client.verify_email(link)` with the link from the e-mail.)
    let client = Client::new(relay)?;
    client.login(username, password).await?;

    // 2. This device's session. The first time, keys are generated, the signed
    //    public bundle is uploaded, and the keys are kept in the store, encrypted
    //    under the passphrase; later runs unlock them.
    let session = Session::open(
        client.clone(),
        Arc::new(SqliteStore::open(store)?),
        SessionOptions {
            store_passphrase: password.to_owned().into(),
            setup: DeviceSetup::New { rsa: None },
            device_name: Some("quickstart".into()),
        },
    )
    .await?;
    let mut events = session
        .events()
        .ok_or("the event stream was already taken")?;
    session.connect(); // live from here: reconnects and resumes by itself

    // 3. Find the peer, and the direct room with them. Unless they have you in
    //    their contacts, they are invited rather than added (the relay asks
    //    for their consent): wait until they accept.
    let query = UserSearchQuery {
        q: peer.into(),
        limit: None,
        cursor: None,
    };
    let found = client.search_users(&query).await?;
    let peer = found
        .items
        .into_iter()
        .find(|u| u.username == peer)
        .ok_or("no such user")?;
    let details = session.direct_room(peer.id).await?;
    let room = details.room.id;
    if !details.members.iter().any(|m| m.user_id == peer.id) {
        println!("{} is invited; waiting for them to accept", peer.username);
        while let Some(event) = events.next().await {
            if let Event::Room {
                room_id,
                change: RoomChange::MemberAdded,
            } = event
                && room_id == room
            {
                break;
            }
        }
    }

    // 4. Say hello: sealed for every device of both of you, posted once.
    session.send_text(room, "hello from the quickstart").await?;

    // 5. Decrypted, verified events, until the peer answers.
    while let Some(event) = events.next().await {
        match event {
            Event::Message(m) if m.sender_id == peer.id => {
                if let Content::Text { body } = m.content {
                    println!("{}: {body}", peer.username);
                    session.mark_read(room, m.seq).await?;
                    return Ok(body);
                }
            }
            Event::IdentityKeyChanged { user_id, .. } => {
                eprintln!("WARNING: the identity key of {user_id} changed; compare safety numbers");
            }
            _ => {}
        }
    }
    Err("the session ended".into())
}

#[allow(dead_code)] // the tests call `run` directly
#[tokio::main]
async fn main() -> Result<(), AnyError> {
    let args: Vec<String> = std::env::args().collect();
    let [_, relay, username, peer] = args.as_slice() else {
        return Err(
            "usage: quickstart RELAY_URL USERNAME PEER (password in SOTTO_PASSWORD)".into(),
        );
    };
    let password = std::env::var("SOTTO_PASSWORD")?;
    run(
        relay,
        username,
        &password,
        peer,
        Path::new(&format!("{username}.sotto.db")),
    )
    .await?;
    Ok(())
}
