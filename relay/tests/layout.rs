//! The storage rule of `docs/architecture.md`: every SQL statement lives in
//! `relay/src/store/` (plus `db.rs`, which owns the pools and migrations);
//! handlers and shared modules call typed store functions and never see SQL.

use std::path::Path;

#[test]
fn sql_lives_only_in_the_store() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut offenders = Vec::new();
    let mut checked = 0;
    for entry in std::fs::read_dir(&src).unwrap_or_else(|e| panic!("{e}")) {
        let path = entry.unwrap_or_else(|e| panic!("{e}")).path();
        if path.extension().and_then(|e| e.to_str()) != Some("rs") {
            continue;
        }
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name == "db.rs" {
            continue;
        }
        checked += 1;
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{e}"));
        for (n, line) in text.lines().enumerate() {
            if [
                "sqlx::query",
                "query_as",
                "query_scalar",
                "SELECT ",
                "INSERT INTO",
                "UPDATE ",
                "DELETE FROM",
            ]
            .iter()
            .any(|needle| line.contains(needle))
            {
                offenders.push(format!("{name}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    assert!(checked > 20, "only {checked} files checked");
    assert!(
        offenders.is_empty(),
        "SQL outside relay/src/store:\n{}",
        offenders.join("\n")
    );
}

/// `relay/.sqlx` (the offline data of the compile-time checked statements)
/// holds no entry for a statement that no longer exists: each file's text is
/// in the store's sources. (A statement without an entry fails the build.)
#[test]
fn offline_query_data_has_no_stale_entries() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut sources = String::new();
    for entry in std::fs::read_dir(root.join("src/store")).unwrap_or_else(|e| panic!("{e}")) {
        let path = entry.unwrap_or_else(|e| panic!("{e}")).path();
        sources.push_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{e}")));
    }
    let mut stale = Vec::new();
    let mut files = 0;
    let mut backends = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(root.join(".sqlx")).unwrap_or_else(|e| panic!("{e}")) {
        let path = entry.unwrap_or_else(|e| panic!("{e}")).path();
        let data: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap_or_else(|e| panic!("{e}")))
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        files += 1;
        backends.insert(data["db_name"].as_str().unwrap_or("").to_string());
        let query = data["query"].as_str().unwrap_or("");
        let text = query.strip_prefix("/* sqlite */ ").unwrap_or(query);
        if !sources.contains(text) {
            stale.push(path.display().to_string());
        }
    }
    assert!(files > 100, "only {files} statements");
    assert_eq!(
        backends.into_iter().collect::<Vec<_>>(),
        ["PostgreSQL", "SQLite"],
        "both backends' data"
    );
    assert!(
        stale.is_empty(),
        "stale offline data (run scripts/sqlx-prepare):\n{}",
        stale.join("\n")
    );
}

/// The layers of `docs/architecture.md` ("Layers"), bottom up. A module may use
/// modules of its own layer or below, never above; within the relay's sources
/// the use graph has no circle at all. Every module of `src/` must be listed,
/// so a new one is placed on purpose.
const LAYERS: &[(&str, &[&str])] = &[
    (
        "foundation",
        &[
            "config",
            "error",
            "digest",
            "ids",
            "pagination",
            "validate",
            "json",
            "db",
            "store",
            "clientip",
            "egress",
            "server",
            "ratelimit",
            "membership",
            "fsutil",
        ],
    ),
    (
        "services",
        &[
            "audit",
            "tokens",
            "auth",
            "mail",
            "events",
            "fanout",
            "ingest",
            "presence",
            "keycache",
            "files",
            "pusher",
            "quotas",
            "housekeeping",
        ],
    ),
    ("state", &["state", "extract"]),
    (
        "features",
        &[
            "ops",
            "auth_routes",
            "users",
            "devices",
            "rooms",
            "invitations",
            "blocks",
            "messages",
            "attachments",
            "contacts",
            "push",
            "ws",
        ],
    ),
    ("application", &["app", "lib", "main"]),
];

/// The module a source file is (`store/rooms.rs` → `store::rooms`).
fn module_of(rel: &Path) -> String {
    let s = rel.with_extension("").to_string_lossy().replace('/', "::");
    s.strip_suffix("::mod").map(str::to_string).unwrap_or(s)
}

/// The source without comments (line, block and doc comments) or string
/// literals, so that a path named in prose is not taken for a use.
fn code_only(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'/' && b.get(i + 1) == Some(&b'/') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                    depth += 1;
                    i += 2;
                } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            out.push_str("\"\"");
        } else {
            out.push(b[i] as char);
            i += 1;
        }
    }
    out
}

/// Every `crate::a` / `crate::a::b` / `super::b` a source uses, as the module it
/// names (`store::b` when `a` is `store` and `b` one of its files).
fn uses_of(module: &str, code: &str, modules: &std::collections::BTreeSet<String>) -> Vec<String> {
    let mut out = Vec::new();
    let mut names = Vec::new();
    // `use crate::{a, b::c}` groups: take each first segment.
    for (start, _) in code.match_indices("crate::") {
        let rest = &code[start + 7..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for part in group[..end].split(',') {
                names.push(part.trim().to_string());
            }
        } else {
            let end = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .unwrap_or(rest.len());
            names.push(rest[..end].to_string());
        }
    }
    if let Some(parent) = module.rsplit_once("::").map(|(p, _)| p.to_string()) {
        for (start, _) in code.match_indices("super::") {
            let rest = &code[start + 7..];
            let end = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            names.push(format!("{parent}::{}", &rest[..end]));
        }
    }
    for name in names {
        let mut segs = name.split("::").filter(|s| !s.is_empty());
        let Some(first) = segs.next() else { continue };
        let two = segs.next().map(|s| format!("{first}::{s}"));
        let target = match two {
            Some(t) if modules.contains(&t) => t,
            _ if modules.contains(first) => first.to_string(),
            _ => continue,
        };
        if target != module {
            out.push(target);
        }
    }
    out.sort();
    out.dedup();
    out
}

#[test]
fn modules_form_layers_without_circles() {
    use std::collections::{BTreeMap, BTreeSet};
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{e}")) {
            let path = entry.unwrap_or_else(|e| panic!("{e}")).path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().and_then(|e| e.to_str()) == Some("rs") {
                files.push(path);
            }
        }
    }
    let modules: BTreeSet<String> = files
        .iter()
        .map(|f| module_of(f.strip_prefix(&src).unwrap_or(f)))
        .collect();
    let layer_of = |m: &str| -> Option<usize> {
        let top = m.split("::").next().unwrap_or(m);
        LAYERS.iter().position(|(_, ms)| ms.contains(&top))
    };
    let unplaced: Vec<&String> = modules.iter().filter(|m| layer_of(m).is_none()).collect();
    assert!(
        unplaced.is_empty(),
        "modules without a layer (add them to LAYERS and docs/architecture.md): {unplaced:?}"
    );
    let mut graph: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut upward = Vec::new();
    for f in &files {
        let module = module_of(f.strip_prefix(&src).unwrap_or(f));
        let text = std::fs::read_to_string(f).unwrap_or_else(|e| panic!("{e}"));
        // Unit tests may reach anywhere.
        let text = text.split("#[cfg(test)]").next().unwrap_or("");
        let uses = uses_of(&module, &code_only(text), &modules);
        for u in &uses {
            let (from, to) = (layer_of(&module), layer_of(u));
            if let (Some(from), Some(to)) = (from, to)
                && to > from
            {
                upward.push(format!(
                    "{module} ({}) uses {u} ({})",
                    LAYERS[from].0, LAYERS[to].0
                ));
            }
        }
        graph.insert(module, uses);
    }
    assert!(graph.len() > 40, "only {} modules read", graph.len());
    assert!(
        upward.is_empty(),
        "uses that run up a layer:\n{}",
        upward.join("\n")
    );
    // Circles: strongly connected components of more than one module (Tarjan).
    struct Tarjan<'a> {
        graph: &'a BTreeMap<String, Vec<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on: BTreeSet<&'a str>,
        next: usize,
        circles: Vec<Vec<String>>,
    }
    impl<'a> Tarjan<'a> {
        fn visit(&mut self, v: &'a str) {
            self.index.insert(v, self.next);
            self.low.insert(v, self.next);
            self.next += 1;
            self.stack.push(v);
            self.on.insert(v);
            for w in self.graph.get(v).into_iter().flatten() {
                let w = w.as_str();
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let lw = self.low[w];
                    let lv = self.low.get_mut(v).unwrap_or_else(|| unreachable!());
                    *lv = (*lv).min(lw);
                } else if self.on.contains(w) {
                    let iw = self.index[w];
                    let lv = self.low.get_mut(v).unwrap_or_else(|| unreachable!());
                    *lv = (*lv).min(iw);
                }
            }
            if self.low[v] == self.index[v] {
                let mut scc = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on.remove(w);
                    scc.push(w.to_string());
                    if w == v {
                        break;
                    }
                }
                if scc.len() > 1 {
                    scc.sort();
                    self.circles.push(scc);
                }
            }
        }
    }
    let mut t = Tarjan {
        graph: &graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        next: 0,
        circles: Vec::new(),
    };
    for v in graph.keys() {
        if !t.index.contains_key(v.as_str()) {
            t.visit(v);
        }
    }
    let detail: Vec<String> = t
        .circles
        .iter()
        .map(|c| {
            let edges: Vec<String> = c
                .iter()
                .flat_map(|a| {
                    graph[a]
                        .iter()
                        .filter(|b| c.contains(b))
                        .map(move |b| format!("{a} -> {b}"))
                })
                .collect();
            format!("{} modules: {}", c.len(), edges.join(", "))
        })
        .collect();
    assert!(
        t.circles.is_empty(),
        "import circles in relay/src:\n{}",
        detail.join("\n")
    );
}
