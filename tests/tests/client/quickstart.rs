//! docs/client.md's complete program, compiled from the very file the document
//! shows and run against a relay process.

#[path = "../../../core/client/examples/quickstart.rs"]
#[allow(clippy::all)]
mod program;

use sotto_tests::Backend;
use sotto_tests::process::RelayProcess;

use crate::support::{PASSWORD, Person, register_account};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_program_runs() {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/client.md")).unwrap();
    let source = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../core/client/examples/quickstart.rs"
    ))
    .unwrap();
    assert!(
        doc.contains(&source),
        "docs/client.md must show core/client/examples/quickstart.rs verbatim"
    );

    let relay = RelayProcess::start(Backend::Sqlite).await;
    let url = relay.url();
    register_account(&relay, &url, "alice").await;
    let mut bob = Person::register(&relay, &url, "bob", None).await;
    let store = tempfile::tempdir().unwrap();

    let program = tokio::spawn({
        let url = url.clone();
        let path = store.path().join("alice-quickstart.db");
        async move {
            program::run(&url, "alice", PASSWORD, "bob", &path)
                .await
                .map_err(|e| e.to_string())
        }
    });
    // Bob does not have Alice in his contacts: he accepts her invitation.
    bob.wait_for(|e| matches!(e, sotto_client::Event::Invitation { .. }))
        .await;
    let invitations = bob.session.invitations().await.unwrap();
    bob.session
        .accept_invitation(&invitations[0])
        .await
        .unwrap();
    let hello = bob.expect_text("hello from the quickstart").await;
    bob.session
        .send_text(hello.room_id, "hello, quickstart")
        .await
        .unwrap();
    assert_eq!(program.await.unwrap().unwrap(), "hello, quickstart");
    // The program marked the answer read.
    let read = bob
        .wait_for(|e| {
            matches!(
                e,
                sotto_client::Event::Receipt {
                    kind: sotto_client::sotto_core::api::ReceiptKind::Read,
                    ..
                }
            )
        })
        .await;
    assert!(matches!(read, sotto_client::Event::Receipt { user_id, .. } if user_id != bob.id()));
}
