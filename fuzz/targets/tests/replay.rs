//! Replays the committed fuzz corpora (`fuzz/corpus/<target>/`, and
//! `fuzz/regressions/<target>/` where present) and the seeds through every
//! target, on the stable toolchain. A finding the fuzzer made and that was
//! fixed stays fixed; a corpus that went missing fails the test.

use std::path::{Path, PathBuf};
use std::time::Instant;

use sotto_fuzz_targets::{TARGETS, seeds::seeds};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return vec![];
    };
    let mut out: Vec<PathBuf> = entries
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    out
}

#[test]
fn corpora_replay_without_findings() {
    let start = Instant::now();
    for (name, target) in TARGETS {
        let corpus = files(&fuzz_dir().join("corpus").join(name));
        assert!(
            corpus.len() >= 10,
            "fuzz/corpus/{name}/ is missing or nearly empty ({} files): run scripts/fuzz",
            corpus.len()
        );
        let regressions = files(&fuzz_dir().join("regressions").join(name));
        for path in corpus.iter().chain(&regressions) {
            let data = std::fs::read(path).expect("corpus file reads");
            // A panic names the file, to reproduce with `cargo fuzz run <target> <file>`.
            eprintln!("replay {}", path.display());
            target(&data);
        }
        println!(
            "{name}: {} corpus + {} regression inputs",
            corpus.len(),
            regressions.len()
        );
    }
    println!("replayed in {:?}", start.elapsed());
}

#[test]
fn seeds_replay_and_reach_past_the_parsers() {
    for (name, target) in TARGETS {
        let seeds = seeds(name);
        assert!(!seeds.is_empty(), "no seeds for {name}");
        for (_, data) in &seeds {
            target(data);
        }
    }
}

/// The seeds are valid inputs (each reaches the end of its parser), so the
/// harness input formats and the vectors agree.
#[test]
fn seeds_are_valid_inputs() {
    use sotto_core::attachment::{AttachmentKey, AttachmentPointer, decrypt};
    use sotto_core::backup::{RecoveryKey, import_with_recovery_key};
    use sotto_core::envelope::Envelope;
    use sotto_core::keys::DeviceBundle;
    use sotto_fuzz_targets::{ATTACHMENT_KEYS, FUZZ_RECOVERY_KEY, recovery_blob_around};

    for (_, s) in seeds("envelope_binary") {
        Envelope::from_bytes(&s).unwrap();
    }
    for (_, s) in seeds("envelope_json") {
        Envelope::from_json_str(std::str::from_utf8(&s).unwrap()).unwrap();
    }
    for (_, s) in seeds("bundle") {
        DeviceBundle::from_json_verified(std::str::from_utf8(&s).unwrap()).unwrap();
    }
    let key = RecoveryKey::from_bytes(FUZZ_RECOVERY_KEY);
    for (name, s) in seeds("backup_blob") {
        let blob = match s[0] {
            0 => s[1..].to_vec(),
            _ => recovery_blob_around(&s[1..]),
        };
        if name != "passphrase" {
            import_with_recovery_key(&blob, &key).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
    for (_, s) in seeds("attachment_pointer") {
        let p: AttachmentPointer = serde_json::from_slice(&s).unwrap();
        p.validate().unwrap();
    }
    for (name, s) in seeds("attachment_stream") {
        let n = usize::from(s[1]);
        let blob = &s[2 + 2 * n..];
        let key = AttachmentKey::from_bytes(ATTACHMENT_KEYS[usize::from(s[0])]);
        let digest = <sha2::Sha256 as sha2::Digest>::digest(blob);
        decrypt(&key, blob, &digest.into()).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    for (_, s) in seeds("recovery_key") {
        RecoveryKey::parse(std::str::from_utf8(&s).unwrap()).unwrap();
    }
    for (_, s) in seeds("membership") {
        sotto_core::membership::MembershipStatement::from_bytes(&s).unwrap();
    }
    for (name, s) in seeds("ws_frame") {
        let parsed =
            sotto_core::api::ws::ClientFrame::from_json_str(std::str::from_utf8(&s).unwrap());
        assert_eq!(
            parsed.is_ok(),
            !name.starts_with("server-") && name != "ping-with-field",
            "{name}"
        );
    }
}
