//! Seed inputs for every target, built from the test vectors in
//! `core/tests/vectors/` (so the fuzzer starts from valid envelopes, bundles,
//! backups, attachments and frames, and can reach past the first checks).
//!
//! `cargo run -p sotto-fuzz-targets --bin fuzz-seed -- fuzz/corpus` writes them
//! as `fuzz/corpus/<target>/seed-<name>`; the replay test runs them too.

use serde_json::{Value, json};
use sotto_core::api::messages::ReceiptKind;
use sotto_core::api::rooms::RoomChange;
use sotto_core::api::ws::{ClientFrame, ServerFrame};
use sotto_core::encoding::B64;
use sotto_core::envelope::{Envelope, Header, RecipientEntry};
use sotto_core::suite::Suite;
use uuid::Uuid;

use crate::{attachment_stream_input, recovery_blob_around};

const SOTTO_V1: &str = include_str!("../../../core/tests/vectors/sotto_v1.json");
const ATTACHMENT_V1: &str = include_str!("../../../core/tests/vectors/attachment_v1.json");
/// The membership statement vectors (also Alice's bundle, the signer).
pub const MEMBERSHIP_V1: &str = include_str!("../../../core/tests/vectors/membership_v1.json");

/// One seed: a file name (without the `seed-` prefix) and its bytes.
pub type Seed = (String, Vec<u8>);

fn hex(text: &str) -> Vec<u8> {
    let digit = |c: u8| match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        b'A'..=b'F' => c - b'A' + 10,
        _ => panic!("not hex: {text}"),
    };
    assert!(text.len().is_multiple_of(2), "odd hex length");
    text.as_bytes()
        .chunks(2)
        .map(|p| (digit(p[0]) << 4) | digit(p[1]))
        .collect()
}

fn vectors() -> (Value, Value) {
    (
        serde_json::from_str(SOTTO_V1).expect("sotto_v1.json parses"),
        serde_json::from_str(ATTACHMENT_V1).expect("attachment_v1.json parses"),
    )
}

fn str_at<'a>(v: &'a Value, what: &str) -> &'a str {
    v.as_str()
        .unwrap_or_else(|| panic!("vector field {what} is not a string"))
}

/// A small hand-built envelope: one x25519 recipient, a 16-byte ciphertext.
fn minimal_envelope() -> Envelope {
    Envelope {
        header: Header {
            room_id: Uuid::from_u128(1),
            sender_user_id: Uuid::from_u128(2),
            sender_device_id: Uuid::from_u128(3),
            client_message_id: Uuid::from_u128(4),
            timestamp_ms: 5,
        },
        recipients: vec![RecipientEntry {
            device_id: Uuid::from_u128(6),
            suite: Suite::X25519,
            wrapped_key: vec![7; 32 + 32 + 16],
        }],
        nonce: [8; 12],
        ciphertext: vec![9; 16],
        signature: [10; 64],
    }
}

/// The seeds of `target` (empty for an unknown name).
pub fn seeds(target: &str) -> Vec<Seed> {
    let (v, att) = vectors();
    let env_hex = str_at(&v["envelope"]["envelope"], "envelope.envelope");
    let envelope = Envelope::from_bytes(&hex(env_hex)).expect("the vector envelope parses");
    let minimal = minimal_envelope();
    let seed = |name: &str, bytes: Vec<u8>| (name.to_owned(), bytes);
    match target {
        "envelope_binary" => vec![
            seed("vector", envelope.to_bytes()),
            seed("minimal", minimal.to_bytes()),
        ],
        "envelope_json" => vec![
            seed(
                "vector",
                serde_json::to_vec(&v["envelope"]["envelope_json"]).expect("json"),
            ),
            seed("minimal", minimal.to_json_string().into_bytes()),
        ],
        "bundle" => v["parties"]
            .as_array()
            .expect("parties")
            .iter()
            .map(|p| {
                let name = str_at(&p["name"], "party name");
                seed(name, serde_json::to_vec(&p["bundle"]).expect("json"))
            })
            .collect(),
        "backup_blob" => {
            let mut out = vec![];
            for (name, field) in [
                ("recovery", "backup_recovery_key"),
                ("passphrase", "backup_passphrase"),
            ] {
                let mut bytes = vec![0u8];
                bytes.extend(hex(str_at(&v[field]["blob"], field)));
                out.push(seed(name, bytes));
            }
            for p in v["parties"].as_array().expect("parties") {
                let name = str_at(&p["name"], "party name");
                let mut plaintext = Vec::new();
                for id in ["user_id", "device_id"] {
                    let id: Uuid = serde_json::from_value(p[id].clone()).expect("uuid");
                    plaintext.extend_from_slice(id.as_bytes());
                }
                for secret in ["identity_seed", "signing_seed", "x25519_secret"] {
                    plaintext.extend(hex(str_at(&p[secret], secret)));
                }
                let rsa = p["rsa_pkcs8"].as_str().map(hex).unwrap_or_default();
                let rsa_len = u16::try_from(rsa.len()).expect("small RSA key");
                plaintext.extend_from_slice(&rsa_len.to_be_bytes());
                plaintext.extend(rsa);
                let mut bytes = vec![1u8];
                bytes.extend_from_slice(&plaintext);
                out.push(seed(&format!("secrets-{name}"), bytes));
            }
            // The blob the harness builds, as a raw blob too.
            if let Some((_, first)) = out.iter().find(|(n, _)| n == "secrets-alice-laptop") {
                let mut bytes = vec![0u8];
                bytes.extend(recovery_blob_around(&first[1..]));
                out.push(seed("harness-blob", bytes));
            }
            out
        }
        "attachment_pointer" => att["vectors"]
            .as_array()
            .expect("vectors")
            .iter()
            .map(|a| {
                let name = str_at(&a["name"], "name");
                seed(name, serde_json::to_vec(&a["pointer"]).expect("json"))
            })
            .collect(),
        "attachment_stream" => {
            let mut out = vec![];
            for (i, a) in att["vectors"]
                .as_array()
                .expect("vectors")
                .iter()
                .enumerate()
            {
                let name = str_at(&a["name"], "name");
                let blob = hex(str_at(&a["blob"], "blob"));
                let key = hex(str_at(&a["key"], "key"));
                let index = crate::ATTACHMENT_KEYS
                    .iter()
                    .position(|k| k[..] == key[..])
                    .expect("the vector key is one of ATTACHMENT_KEYS");
                let index = u8::try_from(index).expect("small");
                out.push(seed(name, attachment_stream_input(index, &[], &blob)));
                if i == 0 {
                    // Pieces across the header and a chunk boundary.
                    out.push(seed(
                        &format!("{name}-pieces"),
                        attachment_stream_input(index, &[3, 10, 1027, 0, 1], &blob),
                    ));
                }
            }
            out
        }
        "membership" => {
            let m: Value = serde_json::from_str(MEMBERSHIP_V1).expect("membership_v1.json parses");
            m["vectors"]
                .as_array()
                .expect("vectors")
                .iter()
                .map(|v| {
                    let name = str_at(&v["name"], "name").replace(' ', "-");
                    seed(&name, hex(str_at(&v["statement"], "statement")))
                })
                .collect()
        }
        "engine_rooms" => {
            // Byte 0: bit 0 marks the group legacy. Then 4-byte steps
            // [op | 0x80 for the direct room, a, b, c] (see `engine_rooms`).
            let script = |steps: &[[u8; 4]], legacy: bool| {
                let mut out = vec![u8::from(legacy)];
                for s in steps {
                    out.extend_from_slice(s);
                }
                out
            };
            vec![
                // Owner: observe alone, sign, add person 1, relay lists them, forward.
                seed(
                    "owner-adds",
                    script(
                        &[
                            [0, 0b0001, 0, 0],
                            [3, 0, 0, 0],
                            [4, 1, 0, 0],
                            [0, 0b0011, 0, 0],
                            [5, 0, 0, 0],
                        ],
                        false,
                    ),
                ),
                // Member: owner 1 signs epoch 1 with us, relay adds an intruder (person 3).
                seed(
                    "intruder-in-group",
                    script(&[[1, 0b0000_0101, 1, 1], [0, 0b1011, 0, 1]], false),
                ),
                // A non-owner's statement, then an older one, then a newer one.
                seed(
                    "refusals",
                    script(
                        &[
                            [1, 0b101, 1, 2],
                            [1, 0b110, 1, 3],
                            [1, 0b101, 1, 1],
                            [0, 0b0111, 0, 1],
                        ],
                        false,
                    ),
                ),
                // Direct room: peer pinned, a third member appears.
                seed(
                    "direct-tampered",
                    script(&[[0x80, 0b0011, 0, 0], [0x80, 0b0111, 0, 0]], false),
                ),
                // Legacy room pinned at first sight, then a statement, then a reload.
                seed(
                    "legacy-reload",
                    script(
                        &[
                            [0, 0b0111, 0, 1],
                            [1, 0b0101, 1, 1],
                            [6, 0, 0, 0],
                            [0, 0b1111, 0, 1],
                        ],
                        true,
                    ),
                ),
                // Raw bytes as a statement.
                seed(
                    "raw-statement",
                    script(
                        &[[2, 8, 1, 0], [0xde, 0xad, 0xbe, 0xef], [0, 1, 2, 3]],
                        false,
                    ),
                ),
                // Ownership passed by the owner, then by a non-owner.
                seed(
                    "ownership",
                    script(
                        &[
                            [1, 0b0111, 1, 1],
                            [1, 0b0111, 2, 2],
                            [1, 0b1011, 3, 3],
                            [0, 0b0111, 0, 2],
                        ],
                        false,
                    ),
                ),
                // Forget the view, signer unknown (b & 0x80).
                seed(
                    "forget-unknown-signer",
                    script(
                        &[[0, 0b0011, 0, 1], [7, 0, 0, 0], [1, 0b0111, 0x81, 4]],
                        false,
                    ),
                ),
                // Invitations in the view, owner withdraws.
                seed(
                    "invited",
                    script(
                        &[
                            [0, 0b0001, 0b0110, 0],
                            [3, 0, 0, 0],
                            [4, 2, 0, 0],
                            [0, 0b0001, 0b0100, 0],
                            [3, 0, 0, 0],
                        ],
                        false,
                    ),
                ),
                // Everything at once.
                seed(
                    "mixed",
                    script(
                        &[
                            [0, 0xff, 0xff, 0xff],
                            [1, 0xff, 0xff, 0xff],
                            [3, 0, 0, 0],
                            [5, 0, 0, 0],
                            [6, 0, 0, 0],
                            [0x80, 0xff, 0, 0],
                        ],
                        false,
                    ),
                ),
            ]
        }
        "recovery_key" => {
            let text = str_at(
                &v["backup_recovery_key"]["recovery_key"],
                "backup_recovery_key.recovery_key",
            );
            vec![
                seed("vector", text.as_bytes().to_vec()),
                seed(
                    "upper-spaced",
                    text.to_uppercase().replace('-', " ").into_bytes(),
                ),
            ]
        }
        "ws_frame" => {
            let room = Uuid::from_u128(0x7007);
            let frames = [
                (
                    "auth",
                    ClientFrame::Auth {
                        token: "token".into(),
                    },
                ),
                (
                    "send",
                    ClientFrame::Send {
                        room_id: room,
                        client_id: envelope.header.client_message_id,
                        envelope: B64(minimal.to_bytes()),
                    },
                ),
                (
                    "typing",
                    ClientFrame::Typing {
                        room_id: room,
                        active: true,
                    },
                ),
                (
                    "receipt",
                    ClientFrame::Receipt {
                        room_id: room,
                        kind: ReceiptKind::Read,
                        seq: 7,
                    },
                ),
                (
                    "resume",
                    ClientFrame::Resume {
                        cursors: [(room, 3), (Uuid::from_u128(1), 0)].into_iter().collect(),
                    },
                ),
                ("ping", ClientFrame::Ping),
            ];
            let mut out: Vec<Seed> = frames
                .iter()
                .map(|(name, f)| seed(name, serde_json::to_vec(f).expect("json")))
                .collect();
            let server = [
                (
                    "server-message",
                    ServerFrame::Message {
                        room_id: room,
                        id: Uuid::from_u128(9),
                        seq: 1,
                        sender_id: Uuid::from_u128(2),
                        device_id: Uuid::from_u128(3),
                        envelope: B64(vec![1, 2, 3]),
                        created_at: "2026-01-01T00:00:00.123Z".into(),
                    },
                ),
                (
                    "server-room",
                    ServerFrame::Room {
                        room_id: room,
                        change: RoomChange::MemberAdded,
                    },
                ),
                (
                    "server-error",
                    ServerFrame::Error {
                        code: "invalid_frame".into(),
                        detail: Some("x".into()),
                        client_id: None,
                        retry_after_ms: None,
                    },
                ),
                (
                    "server-error-retry",
                    ServerFrame::Error {
                        code: "rate_limited".into(),
                        detail: None,
                        client_id: Some(room),
                        retry_after_ms: Some(250),
                    },
                ),
                (
                    "server-invitation",
                    ServerFrame::Invitation {
                        invitation_id: room,
                        room_id: room,
                        change: sotto_core::api::InvitationChange::Received,
                    },
                ),
            ];
            out.extend(
                server
                    .iter()
                    .map(|(name, f)| seed(name, serde_json::to_vec(f).expect("json"))),
            );
            out.push(seed(
                "ping-with-field",
                serde_json::to_vec(&json!({"type": "ping", "x": 1})).expect("json"),
            ));
            out
        }
        "engine_vault" => {
            // An item of the target's room and seq (text and file), one of
            // another seq, and a framed store key with parameters out of range.
            let item = |seq: u64, content: Value| {
                serde_json::to_vec(&json!({
                    "room_id": "0190f0f0-0000-7000-8000-000000000001",
                    "id": "0190f0f0-0000-7000-8000-0000000000aa",
                    "seq": seq,
                    "sender_id": "0190f0f0-0000-7000-8000-0000000000bb",
                    "sender_device": "0190f0f0-0000-7000-8000-0000000000cc",
                    "client_id": "0190f0f0-0000-7000-8000-0000000000dd",
                    "sent_at_ms": 1_700_000_000_000u64,
                    "received_at": "2026-12-06T12:00:00.000Z",
                    "trust": "unverified",
                    "content": content,
                }))
                .expect("json")
            };
            let mut wrapped = b"SOTTOSK\x01".to_vec();
            wrapped.resize(96, 0);
            vec![
                seed(
                    "text-item",
                    item(42, json!({"type": "text", "body": "hello"})),
                ),
                seed(
                    "file-item",
                    item(
                        42,
                        json!({"type": "file", "file": {"id": "0190f0f0-0000-7000-8000-0000000000ee",
                            "key": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                            "sha256": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                            "size": 5, "encrypted_size": 30, "chunk_size": 65536, "name": "a.txt"}}),
                    ),
                ),
                seed(
                    "other-seq",
                    item(41, json!({"type": "text", "body": "moved"})),
                ),
                seed("wrapped-key-zero-params", wrapped),
            ]
        }
        "engine_feed" => {
            // Schedules of frames for one room: in order, a gap and its replay,
            // a redelivery after a crash, a deletion, a replayed id, a join.
            let room = "0190f0f0-0000-7000-8000-000000000001";
            let msg = |seq: u64, id: u8, mine: bool| {
                let (sender, device) = if mine {
                    (
                        "00000000-0000-0000-0000-000000000001",
                        "00000000-0000-0000-0000-000000000002",
                    )
                } else {
                    (
                        "0190f0f0-0000-7000-8000-0000000000bb",
                        "0190f0f0-0000-7000-8000-0000000000cc",
                    )
                };
                let envelope = B64(vec![id; 16]);
                serde_json::to_string(&json!({
                    "type": "message", "room_id": room, "id": "0190f0f0-0000-7000-8000-0000000000aa",
                    "seq": seq, "sender_id": sender, "device_id": device,
                    "envelope": envelope, "created_at": "2026-12-06T12:00:00.000Z",
                }))
                .expect("json")
            };
            let deleted = |seq: u64| {
                serde_json::to_string(&json!({"type": "message_deleted", "room_id": room,
                    "id": "0190f0f0-0000-7000-8000-0000000000aa", "seq": seq}))
                .expect("json")
            };
            let joined = serde_json::to_string(
                &json!({"type": "room", "room_id": room, "change": "member_added"}),
            )
            .expect("json");
            let start =
                serde_json::to_string(&json!({"type": "history_start", "room_id": room, "seq": 2}))
                    .expect("json");
            let lines = |l: Vec<String>| l.join("\n").into_bytes();
            vec![
                seed(
                    "in-order",
                    lines(vec![
                        joined.clone(),
                        msg(1, 1, false),
                        msg(2, 2, true),
                        msg(3, 3, false),
                        "S".into(),
                        "R".into(),
                    ]),
                ),
                seed(
                    "gap-and-replay",
                    lines(vec![
                        joined.clone(),
                        msg(3, 3, false),
                        msg(1, 1, false),
                        msg(2, 2, false),
                        msg(3, 3, false),
                        "S".into(),
                    ]),
                ),
                seed(
                    "crash-and-redeliver",
                    lines(vec![
                        joined.clone(),
                        msg(1, 1, false),
                        "S".into(),
                        msg(2, 2, false),
                        "C".into(),
                        msg(2, 2, false),
                        "S".into(),
                    ]),
                ),
                seed(
                    "delete-and-replayed-id",
                    lines(vec![
                        joined.clone(),
                        start,
                        msg(3, 1, false),
                        deleted(3),
                        msg(4, 1, false),
                        deleted(4),
                        "S".into(),
                    ]),
                ),
            ]
        }
        "engine_link" => {
            // A connection through its handshake, a step of two messages
            // stored and shown, a send acked, a cut, a reconnect; a stop in a
            // step; a silent relay.
            let room = "00000000-0000-0000-0000-00000000000a";
            let msg = |seq: u64| {
                serde_json::to_string(&json!({
                    "type": "message", "room_id": room,
                    "id": format!("0190f0f0-0000-7000-8000-{seq:012}"),
                    "seq": seq, "sender_id": "0190f0f0-0000-7000-8000-0000000000bb",
                    "device_id": "0190f0f0-0000-7000-8000-0000000000cc",
                    "envelope": B64(vec![seq as u8; 8]), "created_at": "2026-12-06T12:00:00.000Z",
                }))
                .expect("json")
            };
            let ready = r#"{"type":"ready","user_id":"00000000-0000-0000-0000-000000000001"}"#;
            let ack = r#"{"type":"ack","client_id":"00000000-0000-0000-0000-000000000065","id":"0190f0f0-0000-7000-8000-0000000000aa","seq":3}"#;
            let lines = |l: Vec<&str>| l.join("\n").into_bytes();
            let (m1, m2) = (msg(1), msg(2));
            vec![
                seed(
                    "connect-step-ack-cut",
                    lines(vec![
                        "s", "p", "o", ready, &m1, &m2, "k", "k", "d", "m", ack, "c", "tttt", "p",
                        "o", ready, &m2, "k", "d",
                    ]),
                ),
                seed(
                    "stop-in-a-step",
                    lines(vec!["s", "p", "o", ready, &m1, &m2, "x", "k", "d", "s"]),
                ),
                seed(
                    "silent-relay",
                    lines(vec![
                        "s",
                        "p",
                        "o",
                        ready,
                        "m",
                        "tttttttttttttttttttt",
                        "tttttttttttttttttttttttttttttttttttttttt",
                        "tttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttt",
                        "O",
                        "P",
                        "L",
                    ]),
                ),
            ]
        }
        "engine_outbox" => vec![
            // begin, socket ack; begin, control, socket refused (rate limited,
            // wait), HTTP stored; begin, socket silent, HTTP 403; begin, HTTP
            // unreachable; begin twice.
            seed("ack", vec![0, 0, 0, 0, 2, 7]),
            seed(
                "control-rate-limited-then-http",
                vec![1, 0, 0, 1, 1, 0, 1, 3, 1, 1, 5, 9],
            ),
            seed("silent-then-refused", vec![2, 0, 0, 2, 4, 0, 2, 6, 1]),
            seed(
                "unreachable-and-twice",
                vec![3, 0, 0, 3, 0, 0, 3, 7, 0, 3, 8, 0],
            ),
        ],
        "engine_open" => {
            // [flags, flags, plaintext...] (see `engine_open`): a text from
            // Alice, from this device, claimed by Alice but sealed by
            // Mallory, a replay, a read-ahead, a failed fetch, a statement's
            // bytes, raw envelope bytes, a revoked sender.
            let text = sotto_engine::Content::text("hi").encode();
            // Alice's statement naming this user and her (room 0x7001).
            let people = crate::engine_people();
            let (me, alice) = (&people[0], &people[1]);
            let signed = sotto_core::membership::MembershipStatement::sign(
                Uuid::from_u128(0x7001),
                1,
                alice.user,
                &[me.user, alice.user],
                sotto_core::membership::Signer {
                    user: alice.user,
                    device: alice.device,
                    keys: &alice.keys,
                },
            )
            .expect("a statement")
            .to_bytes();
            let with = |b0: u8, b1: u8, rest: &[u8]| {
                let mut v = vec![b0, b1];
                v.extend_from_slice(rest);
                v
            };
            vec![
                seed("alice-text", with(0x04, 0, &text)),
                seed("own-text", with(0x05, 0, &text)),
                seed("impostor", with(0x07, 0, &text)),
                seed("replay", with(0x24, 0, &text)),
                seed("read-ahead", with(0x0c, 0, &text)),
                seed("fetch-fails", with(0x44, 0, &text)),
                seed("statement", with(0x04, 4, &[1, 2, 3])),
                seed("signed-statement", with(0x04, 4, &signed)),
                seed(
                    "signed-statement-forwarded-by-this-device",
                    with(0x05, 4, &signed),
                ),
                seed("raw", with(0x00, 0, &minimal.to_bytes())),
                seed("revoked", with(0x84, 1, &text)),
                seed("other-room", with(0x04, 8, &text)),
            ]
        }
        "engine_address" => vec![
            // [setup, (op, a, b, answers...)...] (see `engine_address`).
            // This user's group: a send (view fetched online, the first
            // statement posted), Mallory written in silently, a send.
            seed(
                "owner-send-intruder-send",
                vec![0, 0, 0, 0, 0, 0, 1, 4, 0x0f, 0, 0, 0, 0, 1, 0, 1],
            ),
            // Another's group: a send before the statement (pending), the
            // owner's statement, a send; an impostor listed for person 1.
            seed(
                "member-statement-impostor",
                vec![
                    1, 0, 0, 0, 0, 1, 7, 0x0d, 0x05, 0, 0, 0, 0, 1, 6, 1, 3, 0, 0, 0, 0, 1,
                ],
            ),
            // A direct room: Carol written in, a send refused; overtaken
            // views and a new connection; offline at the end.
            seed(
                "direct-tampered-overtaken-offline",
                vec![
                    2, 4, 0x07, 0x02, 0, 0, 0, 1, 1, 0, 7, 0x80, 0, 0, 0, 0, 1, 1, 0,
                ],
            ),
            // Adding and withdrawing as the owner, a refused post, a
            // revoked device.
            seed(
                "add-withdraw-refused-revoked",
                vec![
                    0, 2, 3, 0, 0, 1, 1, 6, 1, 5, 3, 3, 0, 0, 0, 1, 0, 0, 0, 0, 1,
                ],
            ),
        ],
        "engine_tokens" => vec![
            // [op, arg]... (see `engine_tokens`): a login, a token, time
            // passes, a refresh (joined by others), its new tokens; a 401
            // for an old token; a forced refresh that fails, then one refused.
            seed(
                "login-refresh-rotate",
                vec![4, 120, 0, 1, 0, 200, 0, 0, 1, 0, 3, 0x80, 0, 0, 7, 0],
            ),
            seed("old-401", vec![4, 120, 2, 1, 2, 0, 0, 0]),
            seed(
                "failed-then-revoked",
                vec![4, 120, 1, 0, 3, 0x20, 1, 0, 3, 0x10, 6, 0, 6, 0, 0, 0],
            ),
            seed("logout-voids", vec![4, 120, 1, 0, 5, 0, 3, 0, 0, 0]),
        ],
        _ => vec![],
    }
}
