//! Attachments: streamed uploads and downloads for members, deletion with their room, size limits, quota, stalls and concurrency.

use serde_json::Value;
use sotto_tests::{Backend, both_backends, spawn_app};
use uuid::Uuid;

both_backends!(
    attachments_stream_and_die_with_their_room,
    upload_limits_quota_and_stalls,
);

async fn attachments_stream_and_die_with_their_room(backend: Backend) {
    let app = spawn_app(backend).await;
    let u = app.users("att", 3).await;
    let (alice, bob, eve) = (&u[0], &u[1], &u[2]);
    let room = app.room(alice, "files", &[bob.id]).await;
    let up = format!("/api/v1/rooms/{room}/attachments");
    let oct = Some("application/octet-stream");

    let small = vec![1u8; 1000];
    let (st, _, body) = app
        .req_bytes("POST", &up, Some(&alice.access), oct, small.clone())
        .await;
    assert_eq!(st, 201);
    let small_id = serde_json::from_slice::<Value>(&body).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let big: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    let (st, _, body) = app
        .req_bytes("POST", &up, Some(&bob.access), oct, big.clone())
        .await;
    assert_eq!(st, 201);
    let created: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(created["size"], 1_000_000);
    let big_id = created["id"].as_str().unwrap().to_string();
    let file = app.data_dir.path().join("attachments").join(&big_id);
    assert_eq!(
        std::fs::read(&file).unwrap(),
        big,
        "large attachments are files"
    );

    for (id, bytes) in [(&small_id, &small), (&big_id, &big)] {
        let (st, h, body) = app
            .req_bytes(
                "GET",
                &format!("/api/v1/attachments/{id}"),
                Some(&bob.access),
                None,
                vec![],
            )
            .await;
        assert_eq!(st, 200);
        assert_eq!(&body, bytes);
        assert_eq!(h["content-type"], "application/octet-stream");
        let (st, _, _) = app
            .req_bytes(
                "GET",
                &format!("/api/v1/attachments/{id}"),
                Some(&eve.access),
                None,
                vec![],
            )
            .await;
        assert_eq!(st, 404, "non-members do not see attachments");
        let (st, _, _) = app
            .req_bytes(
                "GET",
                &format!("/api/v1/attachments/{id}"),
                None,
                None,
                vec![],
            )
            .await;
        assert_eq!(st, 401);
    }
    let (st, _, _) = app
        .req_bytes("POST", &up, Some(&eve.access), oct, small.clone())
        .await;
    assert_eq!(st, 404);
    let (st, _, body) = app
        .req_bytes(
            "POST",
            &up,
            Some(&alice.access),
            Some("text/plain"),
            small.clone(),
        )
        .await;
    assert_eq!(st, 415, "{}", String::from_utf8_lossy(&body));
    let (st, _, _) = app
        .req_bytes("POST", &up, Some(&alice.access), oct, vec![])
        .await;
    assert_eq!(st, 400);

    // Over the limit: refused from Content-Length, and mid-stream without one.
    let max = app.state.config.max_attachment_bytes;
    let head = format!(
        "POST {up} HTTP/1.1\r\nAuthorization: Bearer {}\r\nContent-Type: application/octet-stream",
        alice.access
    );
    assert_eq!(app.raw_declared(&head, max + 1).await, 413);
    let chunks = usize::try_from(max / 65536).unwrap() + 4;
    assert_eq!(app.raw_chunked(&head, chunks, 65536).await, 413);
    // Exactly at the limit is fine (then removed again below with the room).
    assert_eq!(
        app.raw_chunked(&head, usize::try_from(max / 65536).unwrap(), 65536)
            .await,
        201
    );
    let at_limit = app
        .texts(&format!(
            "SELECT CAST(id AS TEXT) FROM attachments WHERE size = {max}"
        ))
        .await
        .remove(0);
    app.exec(
        "DELETE FROM attachments WHERE id = $1",
        &[at_limit.parse().unwrap()],
    )
    .await;
    std::fs::remove_file(app.data_dir.path().join("attachments").join(&at_limit)).unwrap();
    assert_eq!(app.count("SELECT COUNT(*) FROM attachments", &[]).await, 2);
    let leftovers: Vec<_> = std::fs::read_dir(app.data_dir.path().join("attachments"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        leftovers,
        vec![big_id.clone()],
        "refused uploads leave no file"
    );

    // Deleting the room deletes its attachments, rows and files.
    assert_eq!(
        app.req(
            "DELETE",
            &format!("/api/v1/rooms/{room}"),
            Some(&alice.access),
            None
        )
        .await
        .status,
        204
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM attachments", &[]).await, 0);
    assert!(!file.exists());
    let (st, _, _) = app
        .req_bytes(
            "GET",
            &format!("/api/v1/attachments/{big_id}"),
            Some(&alice.access),
            None,
            vec![],
        )
        .await;
    assert_eq!(st, 404);

    // An orphaned file (say, after a crash) is swept once old enough.
    let orphan = app
        .data_dir
        .path()
        .join("attachments")
        .join(Uuid::new_v4().to_string());
    std::fs::write(&orphan, b"x").unwrap();
    assert_eq!(
        app.state
            .files
            .sweep_orphans(&app.state.db, std::time::Duration::from_secs(3600))
            .await,
        0
    );
    assert_eq!(
        app.state
            .files
            .sweep_orphans(&app.state.db, std::time::Duration::ZERO)
            .await,
        1
    );
    assert!(!orphan.exists());
}

async fn upload_limits_quota_and_stalls(backend: Backend) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    let app = sotto_tests::spawn_app_with(
        backend,
        sotto_tests::AppOptions {
            attachment_quota_bytes: 400_000,
            request_timeout: 2,
            ..Default::default()
        },
    )
    .await;
    let u = app.users("upl", 1).await;
    let alice = &u[0];
    let room = app.room(alice, "files", &[]).await;
    let up = format!("/api/v1/rooms/{room}/attachments");
    let oct = Some("application/octet-stream");
    let head = format!(
        "POST {up} HTTP/1.1\r\nAuthorization: Bearer {}\r\nContent-Type: application/octet-stream",
        alice.access
    );
    // Sends 32 KiB chunks, pausing after each as given; returns the status.
    let upload = |pauses_ms: Vec<u64>| {
        let head = head.clone();
        let addr = app.addr;
        async move {
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            let h = format!(
                "{head}\r\nHost: {addr}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            );
            s.write_all(h.as_bytes()).await.unwrap();
            for pause in pauses_ms {
                let framed = [b"8000\r\n".to_vec(), vec![7u8; 0x8000], b"\r\n".to_vec()].concat();
                if s.write_all(&framed).await.is_err() {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
            }
            let _ = s.write_all(b"0\r\n\r\n").await;
            let mut r = tokio::io::BufReader::new(s);
            let mut line = String::new();
            r.read_line(&mut line).await.unwrap();
            line.split_whitespace()
                .nth(1)
                .unwrap()
                .parse::<u16>()
                .unwrap()
        }
    };
    // A slow but steady upload outlives the 2 s request timeout...
    assert_eq!(
        upload(vec![700, 700, 700, 700]).await,
        201,
        "uploads are exempt from the request timeout"
    );
    // ...one that stalls (after spilling past the inline size) is cut off with
    // 408, and leaves no temporary file behind.
    assert_eq!(upload(vec![0, 0, 0, 4500]).await, 408);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let leftovers: Vec<String> = std::fs::read_dir(app.data_dir.path().join("attachments"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("upload-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // At most four uploads per user at once: hold four open, the fifth is 429.
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut s = tokio::net::TcpStream::connect(app.addr).await.unwrap();
        let h = format!(
            "{head}\r\nHost: {}\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n12345678\r\n",
            app.addr
        );
        s.write_all(h.as_bytes()).await.unwrap();
        held.push(s);
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let (st, h, _) = app
        .req_bytes("POST", &up, Some(&alice.access), oct, vec![1; 10])
        .await;
    assert_eq!(st, 429);
    assert!(h.get("retry-after").is_some());
    drop(held);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;

    // The quota: 131 072 bytes stored so far, 400 000 allowed.
    let (st, _, _) = app
        .req_bytes("POST", &up, Some(&alice.access), oct, vec![1; 200_000])
        .await;
    assert_eq!(st, 201);
    let (st, _, body) = app
        .req_bytes("POST", &up, Some(&alice.access), oct, vec![1; 200_000])
        .await;
    assert_eq!(st, 413);
    assert_eq!(
        serde_json::from_slice::<Value>(&body).unwrap()["code"],
        "quota_exceeded"
    );
    assert_eq!(
        app.raw_chunked(&head, 4, 65536).await,
        413,
        "quota while streaming"
    );
    // Other requests keep their timeout and work.
    assert_eq!(app.get("/health", None).await.status, 200);
}
