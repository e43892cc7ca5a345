//! Writes the seeds of every fuzz target (from the test vectors) into
//! `<dir>/<target>/seed-<name>`; `dir` defaults to `fuzz/corpus`.
//!
//! `cargo run -p sotto-fuzz-targets --bin fuzz-seed -- [dir]`

use std::path::PathBuf;

fn main() -> std::io::Result<()> {
    let dir = std::env::args_os().nth(1).map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../corpus"),
        PathBuf::from,
    );
    for (target, _) in sotto_fuzz_targets::TARGETS {
        let out = dir.join(target);
        std::fs::create_dir_all(&out)?;
        let seeds = sotto_fuzz_targets::seeds::seeds(target);
        for (name, bytes) in &seeds {
            std::fs::write(out.join(format!("seed-{name}")), bytes)?;
        }
        println!("{target}: {} seeds in {}", seeds.len(), out.display());
    }
    Ok(())
}
