//! The `/commands`. Each one checks its arguments here and does its relay or
//! SDK calls on a background task, which reports back as an [`AppMsg`].

use std::path::{Path, PathBuf};

use sotto_client::sotto_core::api::{AddedMember, PublicUser, RoomKind, UserSearchQuery};
use sotto_client::{Client, SenderTrust, Session};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::app::{App, AppMsg, Level, Prompt, PromptAction, Target, human_size, send_result};

/// Command, arguments, what it does (for /help).
pub const HELP: &[(&str, &str, &str)] = &[
    ("/dm", "<user>", "open the direct room with a user"),
    (
        "/room",
        "<name> [users…]",
        "create a group room with these members",
    ),
    (
        "/invite",
        "<user>",
        "add a user to this group room (invited unless you are their contact)",
    ),
    (
        "/invites",
        "",
        "list invitations to rooms you are not in yet",
    ),
    ("/join", "<n>", "accept invitation #n (see /invites)"),
    ("/decline", "<n>", "decline invitation #n"),
    ("/search", "<prefix>", "find users by username"),
    ("/contacts", "", "list your contacts"),
    ("/add", "<user> [nickname]", "add a contact"),
    (
        "/who",
        "",
        "members of this room, online or not, verified or not",
    ),
    (
        "/verify",
        "<user>",
        "show the safety number you share with a user",
    ),
    (
        "/verified",
        "<user>",
        "mark a user verified, after the numbers matched",
    ),
    (
        "/accept",
        "<user>",
        "accept a user's new identity key after a warning",
    ),
    ("/file", "<path>", "send a file (end-to-end encrypted)"),
    (
        "/save",
        "<n> [dir]",
        "save received file #n (default: current directory)",
    ),
    (
        "/backup",
        "<file>",
        "write a key backup, to link another device",
    ),
    ("/clear", "", "clear this view"),
    ("/help", "", "this help"),
    ("/quit", "", "leave (also Esc or Ctrl-C)"),
];

fn help_lines() -> Vec<(String, Level)> {
    let mut out = vec![("Commands:".to_owned(), Level::Good)];
    for (cmd, args, what) in HELP {
        out.push((
            format!("  {:<28} {what}", format!("{cmd} {args}")),
            Level::Info,
        ));
    }
    out.push((
        "Keys: Enter send · Tab/Shift-Tab or Ctrl-N/Ctrl-P switch rooms · Alt-0…9 jump · PgUp/PgDn scroll · ↑/↓ history · Esc/Ctrl-C quit".to_owned(),
        Level::Info,
    ));
    out.push((
        "Marks on your messages: … sending · ↻ waiting for the connection · • stored by the relay · ✓ delivered · ✓✓ read · ✗ not sent. Start a message with // to send a leading /.".to_owned(),
        Level::Info,
    ));
    out
}

/// Finds a user by exact username (known ones first, then a relay search).
async fn resolve(client: &Client, known: Option<Uuid>, name: &str) -> Result<PublicUser, String> {
    let name = name.trim_start_matches('@');
    let page = client
        .search_users(&UserSearchQuery {
            q: name.to_owned(),
            limit: Some(50),
            cursor: None,
        })
        .await;
    match page {
        Ok(p) => p
            .items
            .into_iter()
            .find(|u| u.username.eq_ignore_ascii_case(name))
            .ok_or_else(|| format!("No user named {name} (try /search {name})")),
        Err(e) => match known {
            Some(id) => Ok(PublicUser {
                id,
                username: name.to_owned(),
                display_name: None,
            }),
            None => Err(format!("Cannot look {name} up: {e}")),
        },
    }
}

fn expand_home(p: &str) -> PathBuf {
    match p.strip_prefix("~/") {
        Some(rest) => std::env::var_os("HOME")
            .map_or_else(|| PathBuf::from(p), |h| PathBuf::from(h).join(rest)),
        None => PathBuf::from(p),
    }
}

/// Runs a `/command` line.
pub fn run(app: &mut App, line: &str) {
    let mut words = line.split_whitespace();
    let cmd = words.next().unwrap_or("").to_ascii_lowercase();
    let args: Vec<&str> = words.collect();
    let target = app.current_target();
    let arg = |i: usize| args.get(i).copied();
    let usage = |app: &mut App, cmd: &str| {
        let text = HELP.iter().find(|(c, _, _)| *c == cmd).map_or_else(
            || format!("Unknown command {cmd}: /help lists them."),
            |(c, a, _)| format!("Usage: {c} {a}"),
        );
        app.status(text, Level::Warn);
    };
    let client = app.session.client().clone();
    let session = app.session.clone();
    let me = app.me;
    match cmd.as_str() {
        "/help" | "/?" => {
            for (t, l) in help_lines() {
                app.say(target, t, l);
            }
        }
        "/quit" | "/exit" | "/q" => app.quit = true,
        "/clear" => match app.current_target() {
            Target::Home => app.home.clear(),
            Target::Room(id) => {
                if let Some(r) = app.rooms.iter_mut().find(|r| r.id == id) {
                    r.lines.clear();
                }
            }
        },
        "/dm" | "/msg" | "/open" => {
            let Some(name) = arg(0).map(str::to_owned) else {
                return usage(app, "/dm");
            };
            let known = app.find_user(&name);
            app.status(
                format!("Opening the conversation with {name}…"),
                Level::Info,
            );
            app.spawn(async move {
                let user = match resolve(&client, known, &name).await {
                    Ok(u) => u,
                    Err(e) => return Some(AppMsg::Status(e, Level::Error)),
                };
                if user.id == me {
                    return Some(AppMsg::Status(
                        "That is you. Pick someone else.".into(),
                        Level::Warn,
                    ));
                }
                Some(match session.direct_room(user.id).await {
                    Ok(details) => AppMsg::RoomLoaded {
                        details,
                        select: true,
                    },
                    Err(e) => AppMsg::Status(format!("Cannot open the room: {e}"), Level::Error),
                })
            });
        }
        "/room" | "/create" => {
            let Some(name) = arg(0).map(str::to_owned) else {
                return usage(app, "/room");
            };
            let names: Vec<(String, Option<Uuid>)> = args
                .iter()
                .skip(1)
                .map(|n| ((*n).to_owned(), app.find_user(n)))
                .collect();
            app.spawn(async move {
                let mut ids = Vec::new();
                for (n, known) in &names {
                    match resolve(&client, *known, n).await {
                        Ok(u) if u.id != me => ids.push(u.id),
                        Ok(_) => {}
                        Err(e) => return Some(AppMsg::Status(e, Level::Error)),
                    }
                }
                Some(match session.create_room(&name, &ids).await {
                    Ok(details) => AppMsg::RoomLoaded {
                        details,
                        select: true,
                    },
                    Err(e) => AppMsg::Status(format!("Cannot create the room: {e}"), Level::Error),
                })
            });
        }
        "/invite" => {
            let Some(name) = arg(0).map(str::to_owned) else {
                return usage(app, "/invite");
            };
            let Some(room) = app.current_room() else {
                return app.status("Open a group room first.", Level::Warn);
            };
            if room.kind == RoomKind::Direct {
                return app.status(
                    "A direct room has two members: create a group with /room <name> <users…>.",
                    Level::Warn,
                );
            }
            let room = room.id;
            let known = app.find_user(&name);
            app.spawn(async move {
                let user = match resolve(&client, known, &name).await {
                    Ok(u) => u,
                    Err(e) => return Some(AppMsg::Status(e, Level::Error)),
                };
                Some(match session.add_member(room, user.id).await {
                    Ok(AddedMember::Member(_)) => AppMsg::Lines(
                        Target::Room(room),
                        vec![(
                            format!("{} was added to the room.", user.username),
                            Level::Good,
                        )],
                    ),
                    Ok(AddedMember::Invited(_)) => AppMsg::Lines(
                        Target::Room(room),
                        vec![(
                            format!(
                                "{} was invited: they join when they accept, and see what is written from then on.",
                                user.username
                            ),
                            Level::Good,
                        )],
                    ),
                    Err(e) => {
                        AppMsg::Status(format!("Cannot add {}: {e}", user.username), Level::Error)
                    }
                })
            });
        }
        "/invites" => {
            if app.invitations.is_empty() {
                return app.say(Target::Home, "No pending invitations.", Level::Info);
            }
            let lines: Vec<String> = app
                .invitations
                .iter()
                .enumerate()
                .map(|(i, inv)| format!("#{}: {}", i + 1, crate::app::describe_invitation(inv)))
                .collect();
            for l in lines {
                app.say(Target::Home, l, Level::Info);
            }
            app.say(
                Target::Home,
                "/join <n> accepts (you see messages from then on), /decline <n> refuses.",
                Level::Info,
            );
        }
        "/join" | "/decline" => {
            let Some(n) = arg(0).and_then(|n| n.trim_start_matches('#').parse::<usize>().ok())
            else {
                return usage(app, &cmd);
            };
            let Some(inv) = n
                .checked_sub(1)
                .and_then(|i| app.invitations.get(i))
                .cloned()
            else {
                return app.status(
                    format!("There is no invitation #{n} (see /invites)."),
                    Level::Error,
                );
            };
            let accept = cmd == "/join";
            app.invitations.retain(|i| i.id != inv.id);
            let tx = app.tx.clone();
            app.spawn(async move {
                if accept {
                    Some(match session.accept_invitation(&inv).await {
                        Ok(details) => AppMsg::RoomLoaded {
                            details,
                            select: true,
                        },
                        Err(e) => AppMsg::Status(format!("Cannot join: {e}"), Level::Error),
                    })
                } else {
                    let r = session.decline_invitation(inv.id).await;
                    let _ = tx.send(AppMsg::Status(
                        match &r {
                            Ok(()) => {
                                format!("Declined: {}.", crate::app::describe_invitation(&inv))
                            }
                            Err(e) => format!("Cannot decline: {e}"),
                        },
                        if r.is_ok() { Level::Info } else { Level::Error },
                    ));
                    None
                }
            });
        }
        "/search" | "/find" => {
            let q = arg(0).unwrap_or("").trim_start_matches('@').to_owned();
            if q.is_empty() {
                return usage(app, "/search");
            }
            let tx = app.tx.clone();
            app.spawn(async move {
                let page = match client
                    .search_users(&UserSearchQuery {
                        q: q.clone(),
                        limit: Some(20),
                        cursor: None,
                    })
                    .await
                {
                    Ok(p) => p,
                    Err(e) => {
                        return Some(AppMsg::Status(format!("Search failed: {e}"), Level::Error));
                    }
                };
                let mut lines = vec![(format!("Users starting with “{q}”:"), Level::Good)];
                if page.items.is_empty() {
                    lines.push((
                        "  nobody (only verified accounts are listed)".into(),
                        Level::Info,
                    ));
                }
                for u in &page.items {
                    let display = u
                        .display_name
                        .as_deref()
                        .map(|d| format!(" ({d})"))
                        .unwrap_or_default();
                    lines.push((
                        format!(
                            "  {}{display}   — /dm {} · /add {}",
                            u.username, u.username, u.username
                        ),
                        Level::Info,
                    ));
                }
                let _ = tx.send(AppMsg::Users(page.items));
                Some(AppMsg::Lines(target, lines))
            });
        }
        "/contacts" => {
            app.load_contacts();
            let mut lines = vec![("Contacts:".to_owned(), Level::Good)];
            if app.contacts.is_empty() {
                lines.push(("  none yet: /add <user>".into(), Level::Info));
            }
            for c in &app.contacts {
                let on = app.presence.get(&c.user.id).copied().unwrap_or(false);
                let nick = c
                    .nickname
                    .as_deref()
                    .map(|n| format!(" “{n}”"))
                    .unwrap_or_default();
                lines.push((
                    format!("  {} {}{nick}", if on { "●" } else { "○" }, c.user.username),
                    Level::Info,
                ));
            }
            for (t, l) in lines {
                app.say(target, t, l);
            }
        }
        "/add" => {
            let Some(name) = arg(0).map(str::to_owned) else {
                return usage(app, "/add");
            };
            let nick = (args.len() > 1)
                .then(|| args.iter().skip(1).copied().collect::<Vec<_>>().join(" "));
            let known = app.find_user(&name);
            let tx = app.tx.clone();
            app.spawn(async move {
                let user = match resolve(&client, known, &name).await {
                    Ok(u) => u,
                    Err(e) => return Some(AppMsg::Status(e, Level::Error)),
                };
                match client.add_contact(user.id, nick.as_deref()).await {
                    Ok(_) => {
                        if let Ok(p) = client.list_contacts(&Default::default()).await {
                            let _ = tx.send(AppMsg::Contacts(p.items));
                        }
                        Some(AppMsg::Status(
                            format!("{} added to your contacts.", user.username),
                            Level::Good,
                        ))
                    }
                    Err(e) => Some(AppMsg::Status(
                        format!("Cannot add {}: {e}", user.username),
                        Level::Error,
                    )),
                }
            });
        }
        "/who" | "/members" => {
            let Some(room) = app.current_room() else {
                return app.status("Open a room first.", Level::Warn);
            };
            let mut lines = vec![(format!("Members of {}:", app.room_title(room)), Level::Good)];
            for m in &room.members {
                let name = app.name_of(*m);
                let on = *m == me || app.presence.get(m).copied().unwrap_or(false);
                let trust = if *m == me {
                    "you".to_owned()
                } else if app.alerts.contains_key(m) {
                    "⚠ IDENTITY KEY CHANGED".to_owned()
                } else {
                    match session.pin(*m) {
                        Some(p) if p.verified => "verified ✔".to_owned(),
                        Some(_) => format!("not verified (/verify {name})"),
                        None => "no key seen yet".to_owned(),
                    }
                };
                lines.push((
                    format!("  {} {name} — {trust}", if on { "●" } else { "○" }),
                    Level::Info,
                ));
            }
            for (t, l) in lines {
                app.say(target, t, l);
            }
        }
        "/verify" | "/safety" => {
            let Some(name) = arg(0).map(str::to_owned) else {
                return usage(app, "/verify");
            };
            let known = app.find_user(&name);
            app.spawn(async move {
                let user = match resolve(&client, known, &name).await {
                    Ok(u) => u,
                    Err(e) => return Some(AppMsg::Status(e, Level::Error)),
                };
                if user.id == me {
                    return Some(AppMsg::Status("That is you.".into(), Level::Warn));
                }
                let n = user.username.clone();
                Some(match session.safety_number(user.id).await {
                    Ok(Some(number)) => {
                        let verified = session.pin(user.id).is_some_and(|p| p.verified);
                        AppMsg::Lines(
                            target,
                            vec![
                                (format!("Safety number with {n}:"), Level::Good),
                                (format!("    {}", number.display()), Level::Good),
                                (
                                    format!(
                                        "Compare it with {n} in person or on a call: if it is the same on both screens, type /verified {n}.{}",
                                        if verified { " (already verified ✔)" } else { "" }
                                    ),
                                    Level::Info,
                                ),
                            ],
                        )
                    }
                    Ok(None) => AppMsg::Status(format!("{n} has no key yet (they have not logged in to a chat)."), Level::Warn),
                    Err(e) => AppMsg::Status(format!("Cannot compute the safety number: {e}"), Level::Error),
                })
            });
        }
        "/verified" | "/trust" => {
            let Some(name) = arg(0).map(str::to_owned) else {
                return usage(app, "/verified");
            };
            let known = app.find_user(&name);
            if known.is_some_and(|id| app.alerts.contains_key(&id)) {
                return app.status(
                    format!("{name}'s key changed: compare the new number (/verify {name}) and /accept {name} first."),
                    Level::Error,
                );
            }
            app.spawn(async move {
                let user = match resolve(&client, known, &name).await {
                    Ok(u) => u,
                    Err(e) => return Some(AppMsg::Status(e, Level::Error)),
                };
                // Make sure the key is known (and pinned) before marking it.
                if let Err(e) = session.safety_number(user.id).await {
                    return Some(AppMsg::Status(
                        format!("Cannot fetch {}'s keys: {e}", user.username),
                        Level::Error,
                    ));
                }
                Some(match session.mark_verified(user.id) {
                    Ok(true) => AppMsg::Lines(
                        target,
                        vec![(format!("{} is now verified ✔", user.username), Level::Good)],
                    ),
                    Ok(false) => AppMsg::Status(
                        format!("No key known for {} yet.", user.username),
                        Level::Warn,
                    ),
                    Err(e) => AppMsg::Status(format!("Cannot save: {e}"), Level::Error),
                })
            });
        }
        "/accept" => {
            let Some(name) = arg(0).map(str::to_owned) else {
                return usage(app, "/accept");
            };
            let known = app.find_user(&name);
            let tx = app.tx.clone();
            app.spawn(async move {
                let user = match resolve(&client, known, &name).await {
                    Ok(u) => u,
                    Err(e) => return Some(AppMsg::Status(e, Level::Error)),
                };
                match session.accept_identity(user.id).await {
                    Ok(()) => {
                        let _ = tx.send(AppMsg::Accepted(user.id));
                        Some(AppMsg::Lines(
                            target,
                            vec![(
                                format!(
                                    "Accepted {}'s new identity key (not verified). Compare safety numbers: /verify {}",
                                    user.username, user.username
                                ),
                                Level::Warn,
                            )],
                        ))
                    }
                    Err(e) => Some(AppMsg::Status(format!("Cannot accept: {e}"), Level::Error)),
                }
            });
        }
        "/file" | "/send" => {
            let path = line
                .split_once(char::is_whitespace)
                .map(|x| x.1.trim())
                .unwrap_or("");
            if path.is_empty() {
                return usage(app, "/file");
            }
            let path = expand_home(path);
            let Some(room) = app.current_room().map(|r| r.id) else {
                return app.status("Open a room first.", Level::Warn);
            };
            let meta = match std::fs::metadata(&path) {
                Ok(m) if m.is_file() => m,
                Ok(_) => {
                    return app.status(format!("{} is not a file.", path.display()), Level::Error);
                }
                Err(e) => {
                    return app
                        .status(format!("Cannot read {}: {e}", path.display()), Level::Error);
                }
            };
            let name = path
                .file_name()
                .map_or_else(|| "file".to_owned(), |n| n.to_string_lossy().into_owned());
            let local =
                app.push_outgoing_file(room, &format!("{name} ({})", human_size(meta.len())));
            let id = app.new_transfer(format!("sending {name}"), true, meta.len());
            let tx = app.tx.clone();
            let on_progress = app.progress_to_ui(id);
            app.spawn(async move {
                let result = session
                    .send_file(room, &path, None, Some(on_progress))
                    .await;
                let done = match &result {
                    Ok(_) => Ok(format!("Sent {name}.")),
                    Err(e) => Err(format!("Sending {name} failed: {e}")),
                };
                let _ = tx.send(AppMsg::TransferDone {
                    id,
                    target: Target::Room(room),
                    result: done,
                });
                Some(send_result(room, local, result))
            });
        }
        "/save" | "/get" => {
            let Some(n) = arg(0).and_then(|n| n.trim_start_matches('#').parse::<usize>().ok())
            else {
                return usage(app, "/save");
            };
            let Some(pointer) = n.checked_sub(1).and_then(|i| app.files.get(i)).cloned() else {
                return app.status(format!("There is no file #{n}."), Level::Error);
            };
            let dir = arg(1).map_or_else(|| PathBuf::from("."), expand_home);
            // The name comes from the sender: only a plain file name is used
            // (no directory, no hidden dot-file such as `.bashrc`).
            let name = match pointer.name.as_deref() {
                Some(sent) => match safe_file_name(sent) {
                    Some(ok) => ok,
                    None => {
                        let fallback = format!("file-{n}");
                        app.say(
                            target,
                            format!(
                                "The sender's file name {sent:?} is not a plain file name (a path, or a hidden dot-file); saving it as {fallback}."
                            ),
                            Level::Warn,
                        );
                        fallback
                    }
                },
                None => format!("file-{n}"),
            };
            let dest = match free_name(&dir, &name) {
                Ok(d) => d,
                Err(e) => return app.status(e, Level::Error),
            };
            let id = app.new_transfer(format!("saving {name}"), false, pointer.size);
            let on_progress = app.progress_to_ui(id);
            app.spawn(async move {
                let result = session
                    .download_file(&pointer, &dest, Some(on_progress))
                    .await;
                Some(AppMsg::TransferDone {
                    id,
                    target,
                    result: match result {
                        Ok(size) => Ok(format!(
                            "Saved file #{n} to {} ({}).",
                            dest.display(),
                            human_size(size)
                        )),
                        Err(e) => Err(format!("Saving file #{n} failed: {e}")),
                    },
                })
            });
        }
        "/backup" => {
            let Some(file) = arg(0).map(str::to_owned) else {
                return usage(app, "/backup");
            };
            app.prompt = Some(Prompt {
                label: format!("Passphrase for the backup {file} (hidden; Esc cancels)"),
                masked: true,
                action: PromptAction::BackupPassphrase { file },
            });
        }
        _ => usage(app, &cmd),
    }
}

/// `dir/name`, or `dir/name (1)`… if taken.
fn free_name(dir: &Path, name: &str) -> Result<PathBuf, String> {
    if !dir.is_dir() {
        return Err(format!("{} is not a directory.", dir.display()));
    }
    let first = dir.join(name);
    if !first.exists() {
        return Ok(first);
    }
    let (stem, ext) = match name.rsplit_once('.') {
        Some((s, e)) if !s.is_empty() => (s.to_owned(), format!(".{e}")),
        _ => (name.to_owned(), String::new()),
    };
    (1..1000)
        .map(|i| dir.join(format!("{stem} ({i}){ext}")))
        .find(|p| !p.exists())
        .ok_or_else(|| format!("Too many copies of {name} in {}.", dir.display()))
}

/// The input line answered a prompt.
pub fn answer_prompt(app: &mut App, prompt: Prompt, answer: Zeroizing<String>) {
    match prompt.action {
        PromptAction::BackupPassphrase { file } => {
            if answer.chars().count() < 8 {
                app.status(
                    "Use at least 8 characters for a backup passphrase.",
                    Level::Error,
                );
                app.prompt = Some(Prompt {
                    action: PromptAction::BackupPassphrase { file },
                    ..prompt
                });
                return;
            }
            app.prompt = Some(Prompt {
                label: "Repeat the passphrase".into(),
                masked: true,
                action: PromptAction::BackupRepeat {
                    file,
                    first: answer,
                },
            });
        }
        PromptAction::BackupRepeat { file, first } => {
            if *first != *answer {
                app.status("The passphrases differ; /backup again.", Level::Error);
                return;
            }
            let session: Session = app.session.clone();
            let target = app.current_target();
            app.status("Writing the key backup…", Level::Info);
            app.spawn(async move {
                let blob = match session.export_backup(&first).await {
                    Ok(b) => b,
                    Err(e) => return Some(AppMsg::Status(format!("Backup failed: {e}"), Level::Error)),
                };
                let path = expand_home(&file);
                if let Err(e) = write_private(&path, &blob) {
                    return Some(AppMsg::Status(format!("Cannot write {}: {e}", path.display()), Level::Error));
                }
                Some(AppMsg::Lines(
                    target,
                    vec![(
                        format!(
                            "Key backup written to {}. On your other device, log in and give it this file and the passphrase to link it.",
                            path.display()
                        ),
                        Level::Good,
                    )],
                ))
            });
        }
    }
}

fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(data)?;
    f.sync_all()
}

/// How a sender is trusted, for a short tag.
pub fn trust_tag(t: Option<SenderTrust>) -> &'static str {
    match t {
        Some(SenderTrust::Verified) => "✔",
        _ => "",
    }
}

/// `name` if it is a plain file name to save under: not empty, no path
/// separator, not starting with a dot (hidden files, `.`/`..`), no control
/// character.
pub fn safe_file_name(name: &str) -> Option<String> {
    let bad = name.is_empty()
        || name.starts_with('.')
        || name.contains(['/', '\\'])
        || name.chars().any(char::is_control)
        || Path::new(name).file_name().map(|f| f.to_string_lossy()) != Some(name.into());
    (!bad).then(|| name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::safe_file_name;

    #[test]
    fn only_plain_file_names_are_saved_under() {
        for ok in ["notes.txt", "photo 1.jpg", "Ünïcode.pdf", "a..b"] {
            assert_eq!(safe_file_name(ok).as_deref(), Some(ok));
        }
        for bad in [
            ".bashrc",
            ".ssh",
            "..",
            ".",
            "",
            "../etc/passwd",
            "a/b",
            "a\\b",
            "/abs",
            "x\u{0}y",
            "bell\u{7}",
        ] {
            assert_eq!(safe_file_name(bad), None, "{bad:?}");
        }
    }
}
