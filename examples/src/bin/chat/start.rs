//! The start screen: log in, register, verify the e-mail address, and (when the
//! account already has a device) link this device from a key backup. Ends with
//! an open [`Session`].

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ratatui::DefaultTerminal;
use ratatui::Frame;
use ratatui::crossterm::event::{
    Event as TermEvent, KeyCode, KeyEvent, KeyEventKind, KeyModifiers,
};
use ratatui::layout::{Alignment, Constraint, Layout, Position, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Borders, Clear, Paragraph, Wrap};
use sotto_client::{
    BackupSecret, Client, DeviceSetup, Error, Session, SessionOptions, SqliteStore,
};
use tokio::sync::mpsc::UnboundedReceiver;
use zeroize::Zeroizing;

use crate::input::Input;
use crate::{Cli, read_secret_file};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Login,
    Register,
    Verify,
    Link,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Relay,
    Username,
    Email,
    Password,
    Link,
    BackupFile,
    BackupPass,
}

impl Field {
    fn label(self, mode: Mode) -> &'static str {
        match self {
            Self::Relay => "Relay URL",
            Self::Username if mode == Mode::Login => "Username or e-mail",
            Self::Username => "Username",
            Self::Email => "E-mail",
            Self::Password => "Password",
            Self::Link => "Verification link (or token) from the e-mail",
            Self::BackupFile => "Key backup file (made with /backup on your other device)",
            Self::BackupPass => "Backup passphrase",
        }
    }

    fn masked(self) -> bool {
        matches!(self, Self::Password | Self::BackupPass)
    }
}

fn fields(mode: Mode) -> &'static [Field] {
    match mode {
        Mode::Login => &[Field::Relay, Field::Username, Field::Password],
        Mode::Register => &[Field::Relay, Field::Username, Field::Email, Field::Password],
        Mode::Verify => &[Field::Relay, Field::Link],
        Mode::Link => &[Field::BackupFile, Field::BackupPass],
    }
}

/// A logged-in account whose device still has to be linked.
struct Pending {
    client: Client,
    password: Zeroizing<String>,
    store: PathBuf,
}

struct Form {
    mode: Mode,
    focus: usize,
    relay: Input,
    username: Input,
    email: Input,
    password: Input,
    link: Input,
    backup_file: Input,
    backup_pass: Input,
    /// A message under the form, and whether it is an error.
    message: Option<(String, Level)>,
    pending: Option<Pending>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Info,
    Busy,
    Error,
}

impl Form {
    fn new(cli: &Cli) -> Self {
        Self {
            mode: Mode::Login,
            focus: 1,
            relay: Input::with_text(&cli.relay),
            username: Input::default(),
            email: Input::default(),
            password: Input::default(),
            link: Input::default(),
            backup_file: Input::default(),
            backup_pass: Input::default(),
            message: Some((
                "Welcome! Log in, or press Ctrl-R to create an account.".into(),
                Level::Info,
            )),
            pending: None,
        }
    }

    fn field(&mut self, f: Field) -> &mut Input {
        match f {
            Field::Relay => &mut self.relay,
            Field::Username => &mut self.username,
            Field::Email => &mut self.email,
            Field::Password => &mut self.password,
            Field::Link => &mut self.link,
            Field::BackupFile => &mut self.backup_file,
            Field::BackupPass => &mut self.backup_pass,
        }
    }

    fn focused(&self) -> Field {
        let f = fields(self.mode);
        f.get(self.focus)
            .or(f.first())
            .copied()
            .unwrap_or(Field::Relay)
    }

    fn switch(&mut self, mode: Mode) {
        if self.mode == Mode::Link && mode != Mode::Link {
            self.pending = None;
        }
        self.mode = mode;
        // Skip the relay field: it is usually right already.
        self.focus = usize::from(mode != Mode::Link && fields(mode).len() > 1);
        if mode == Mode::Verify {
            self.focus = 1;
        }
    }

    fn say(&mut self, text: impl Into<String>, level: Level) {
        self.message = Some((text.into(), level));
    }
}

/// The default key store of a user: `$XDG_DATA_HOME/sotto/<user>.db`
/// (`~/.local/share/sotto/<user>.db`).
fn default_store(username: &str) -> PathBuf {
    let base = std::env::var_os("XDG_DATA_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."));
    let safe: String = username
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    base.join("sotto").join(format!("{safe}.db"))
}

fn open_store(path: &Path) -> Result<Arc<SqliteStore>, String> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
        }
    }
    SqliteStore::open(path)
        .map(Arc::new)
        .map_err(|e| format!("cannot open the key store {}: {e}", path.display()))
}

fn describe(e: &Error) -> String {
    match e {
        Error::Locked => "The store did not open with this passphrase (it is locked with the store passphrase of this device: --store-passphrase-file, or the password used when the device was set up).".into(),
        Error::DeviceRevoked => "This device was revoked: use another key store (--store).".into(),
        Error::Network(_) => format!("Cannot reach the relay: {e}"),
        Error::Relay { problem, .. } => {
            let detail = problem.detail.clone().unwrap_or_default();
            format!("{} ({}){}", problem.title, problem.code, if detail.is_empty() { String::new() } else { format!(": {detail}") })
        }
        other => other.to_string(),
    }
}

/// An open session and its store (the chat looks into its outbox).
pub type Opened = (Session, Arc<SqliteStore>);

/// Runs the start screen until a session is open (`None`: the user quit).
pub async fn run(
    term: &mut DefaultTerminal,
    cli: &Cli,
    input: &mut UnboundedReceiver<TermEvent>,
) -> Result<Option<Opened>, String> {
    let mut form = Form::new(cli);
    if let (Some(login), Some(file)) = (&cli.login, &cli.password_file) {
        form.username.set(login);
        match read_secret_file(file) {
            Ok(pw) => {
                form.password.set(&pw);
                if let Some(s) = submit(term, cli, &mut form).await? {
                    return Ok(Some(s));
                }
            }
            Err(e) => form.say(e, Level::Error),
        }
    }
    loop {
        draw_now(term, &form)?;
        let Some(ev) = input.recv().await else {
            return Ok(None);
        };
        match ev {
            TermEvent::Paste(s) => {
                let f = form.focused();
                form.field(f).insert_str(&s);
            }
            TermEvent::Key(key) if key.kind != KeyEventKind::Release => {
                if let Some(done) = on_key(term, cli, &mut form, key).await? {
                    return Ok(done);
                }
            }
            _ => {}
        }
    }
}

/// Handles a key; `Some(result)` ends the start screen.
async fn on_key(
    term: &mut DefaultTerminal,
    cli: &Cli,
    form: &mut Form,
    key: KeyEvent,
) -> Result<Option<Option<Opened>>, String> {
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    let n = fields(form.mode).len();
    match key.code {
        KeyCode::Esc => return Ok(Some(None)),
        KeyCode::Char('c') if ctrl => return Ok(Some(None)),
        KeyCode::Char('l') if ctrl => form.switch(Mode::Login),
        KeyCode::Char('r') if ctrl => form.switch(Mode::Register),
        KeyCode::Char('e') if ctrl => form.switch(Mode::Verify),
        KeyCode::Tab | KeyCode::Down => form.focus = (form.focus + 1) % n,
        KeyCode::BackTab | KeyCode::Up => form.focus = (form.focus + n - 1) % n,
        KeyCode::Enter => {
            // Enter moves on to the next field; on the last one it submits.
            if form.focus + 1 < n {
                form.focus += 1;
                return Ok(None);
            }
            let missing = fields(form.mode)
                .iter()
                .position(|f| form.field(*f).text().trim().is_empty());
            if let Some(i) = missing {
                form.focus = i;
                let f = form.focused();
                form.say(format!("{} is required.", f.label(form.mode)), Level::Error);
            } else if let Some(s) = submit(term, cli, form).await? {
                return Ok(Some(Some(s)));
            }
        }
        code => {
            let f = form.focused();
            edit(form.field(f), code, key.modifiers);
        }
    }
    Ok(None)
}

/// The editing keys of a text field.
pub fn edit(field: &mut Input, code: KeyCode, mods: KeyModifiers) {
    let ctrl = mods.contains(KeyModifiers::CONTROL);
    match code {
        KeyCode::Char('a') if ctrl => field.home(),
        KeyCode::Char('e') if ctrl => field.end(),
        KeyCode::Char('u') if ctrl => field.delete_to_start(),
        KeyCode::Char('k') if ctrl => field.delete_to_end(),
        KeyCode::Char('w') if ctrl => field.delete_word(),
        KeyCode::Char(_) if ctrl || mods.contains(KeyModifiers::ALT) => {}
        KeyCode::Char(c) => field.insert(c),
        KeyCode::Backspace => field.backspace(),
        KeyCode::Delete => field.delete(),
        KeyCode::Left => field.left(),
        KeyCode::Right => field.right(),
        KeyCode::Home => field.home(),
        KeyCode::End => field.end(),
        _ => {}
    }
}

/// Submits the form of the current mode.
async fn submit(
    term: &mut DefaultTerminal,
    cli: &Cli,
    form: &mut Form,
) -> Result<Option<Opened>, String> {
    let relay = form.relay.text().trim().to_owned();
    let client = match form.pending.as_ref() {
        Some(p) if form.mode == Mode::Link => p.client.clone(),
        _ => match Client::new(&relay) {
            Ok(c) => c,
            Err(e) => {
                form.say(describe(&e), Level::Error);
                return Ok(None);
            }
        },
    };
    match form.mode {
        Mode::Register => {
            let (u, e) = (
                form.username.text().trim().to_owned(),
                form.email.text().trim().to_owned(),
            );
            form.say(format!("Creating the account {u}…"), Level::Busy);
            draw_now(term, form)?;
            match client.register(&u, &e, form.password.text()).await {
                Ok(user) => {
                    form.switch(Mode::Verify);
                    form.say(
                        format!(
                            "Account {} created. We sent a link to {}: paste it here (or its token) and press Enter.",
                            user.username, user.email
                        ),
                        Level::Info,
                    );
                }
                Err(e) => form.say(
                    format!("Registration failed: {}", describe(&e)),
                    Level::Error,
                ),
            }
            Ok(None)
        }
        Mode::Verify => {
            form.say("Verifying…", Level::Busy);
            draw_now(term, form)?;
            match client.verify_email(form.link.text()).await {
                Ok(user) => {
                    form.switch(Mode::Login);
                    form.username.set(&user.username);
                    form.focus = 2;
                    form.say(
                        format!("E-mail verified. Welcome, {}! Log in now.", user.username),
                        Level::Info,
                    );
                }
                Err(e) => form.say(
                    format!("Verification failed: {}", describe(&e)),
                    Level::Error,
                ),
            }
            Ok(None)
        }
        Mode::Login => {
            let login = form.username.text().trim().to_owned();
            form.say(format!("Logging in as {login}…"), Level::Busy);
            draw_now(term, form)?;
            let user = match client.login(&login, form.password.text()).await {
                Ok(u) => u,
                Err(e) => {
                    let mut msg = format!("Login failed: {}", describe(&e));
                    if e.code().is_some_and(|c| c.contains("verif")) {
                        msg.push_str(" — verify your e-mail first (Ctrl-E).");
                    }
                    form.say(msg, Level::Error);
                    return Ok(None);
                }
            };
            let store = cli
                .store
                .clone()
                .unwrap_or_else(|| default_store(&user.username));
            let password = Zeroizing::new(form.password.text().to_owned());
            form.say("Unlocking this device's keys…", Level::Busy);
            draw_now(term, form)?;
            let pending = Pending {
                client,
                password,
                store,
            };
            match open(&pending, cli, DeviceSetup::New { rsa: None }).await {
                Ok(s) => Ok(Some(s)),
                Err(Error::IdentityExists) => {
                    form.pending = Some(pending);
                    form.switch(Mode::Link);
                    form.say(
                        "This account already has a device. To chat here too, link this device with a key backup from your other device (type /backup <file> there), then give the file and its passphrase here.",
                        Level::Info,
                    );
                    if let (Some(b), Some(p)) = (&cli.backup, &cli.backup_passphrase_file) {
                        form.backup_file.set(&b.to_string_lossy());
                        match read_secret_file(p) {
                            Ok(pw) => {
                                form.backup_pass.set(&pw);
                                return Box::pin(submit(term, cli, form)).await;
                            }
                            Err(e) => form.say(e, Level::Error),
                        }
                    }
                    Ok(None)
                }
                Err(e) => {
                    form.say(describe(&e), Level::Error);
                    Ok(None)
                }
            }
        }
        Mode::Link => {
            let Some(pending) = form.pending.take() else {
                form.switch(Mode::Login);
                return Ok(None);
            };
            let path = PathBuf::from(form.backup_file.text().trim());
            let backup = match std::fs::read(&path) {
                Ok(b) => b,
                Err(e) => {
                    form.say(format!("Cannot read {}: {e}", path.display()), Level::Error);
                    form.pending = Some(pending);
                    return Ok(None);
                }
            };
            form.say(
                "Linking this device (opening the backup takes a moment)…",
                Level::Busy,
            );
            draw_now(term, form)?;
            let setup = DeviceSetup::Link {
                backup,
                secret: BackupSecret::Passphrase(Zeroizing::new(
                    form.backup_pass.text().to_owned(),
                )),
                rsa: None,
            };
            match open(&pending, cli, setup).await {
                Ok(s) => Ok(Some(s)),
                Err(e) => {
                    let msg = match &e {
                        Error::Backup(_) => {
                            "The backup did not open: wrong passphrase or not a key backup."
                                .to_owned()
                        }
                        _ => describe(&e),
                    };
                    form.say(msg, Level::Error);
                    form.pending = Some(pending);
                    Ok(None)
                }
            }
        }
    }
}

async fn open(p: &Pending, cli: &Cli, setup: DeviceSetup) -> Result<Opened, Error> {
    let store = open_store(&p.store).map_err(Error::Store)?;
    let session = Session::open(
        p.client.clone(),
        store.clone(),
        SessionOptions {
            store_passphrase: match &cli.store_passphrase_file {
                Some(file) => read_secret_file(file).map_err(Error::Store)?,
                None => p.password.clone(),
            },
            setup,
            device_name: Some(cli.device_name.clone()),
        },
    )
    .await?;
    Ok((session, store))
}

fn draw_now(term: &mut DefaultTerminal, form: &Form) -> Result<(), String> {
    term.draw(|f| draw(f, form))
        .map(drop)
        .map_err(|e| format!("cannot draw: {e}"))
}

fn draw(f: &mut Frame<'_>, form: &Form) {
    let area = f.area();
    let n = fields(form.mode).len() as u16;
    let height = (n * 3 + 12).min(area.height);
    let width = 84.min(area.width);
    let r = Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    };
    f.render_widget(Clear, r);
    let outer = Block::default()
        .borders(Borders::ALL)
        .border_type(BorderType::Rounded)
        .title(Line::from(" Sotto chat ").bold_title())
        .title_alignment(Alignment::Center);
    let inner = outer.inner(r);
    f.render_widget(outer, r);

    let mut constraints = vec![Constraint::Length(2)];
    constraints.extend(std::iter::repeat_n(Constraint::Length(3), n as usize));
    constraints.push(Constraint::Min(3));
    constraints.push(Constraint::Length(1));
    let rows = Layout::vertical(constraints).split(inner);

    // Tabs.
    let tab = |label: &str, key: &str, m: Mode| {
        let style = if form.mode == m {
            Style::default()
                .fg(Color::Black)
                .bg(Color::Cyan)
                .add_modifier(Modifier::BOLD)
        } else {
            Style::default().fg(Color::Gray)
        };
        vec![
            Span::styled(format!(" {label} "), style),
            Span::styled(format!("{key}  "), Style::default().fg(Color::DarkGray)),
        ]
    };
    let mut tabs = Vec::new();
    if form.mode == Mode::Link {
        tabs.extend(tab("Link this device", "", Mode::Link));
        tabs.extend(tab("Back to log in", "Ctrl-L", Mode::Login));
    } else {
        tabs.extend(tab("Log in", "Ctrl-L", Mode::Login));
        tabs.extend(tab("Register", "Ctrl-R", Mode::Register));
        tabs.extend(tab("Verify e-mail", "Ctrl-E", Mode::Verify));
    }
    if let Some(r) = rows.first() {
        f.render_widget(
            Paragraph::new(Line::from(tabs)).alignment(Alignment::Center),
            *r,
        );
    }

    for (i, field) in fields(form.mode).iter().enumerate() {
        let Some(row) = rows.get(i + 1) else { continue };
        let focused = i == form.focus;
        let block = Block::default()
            .borders(Borders::ALL)
            .title(format!(" {} ", field.label(form.mode)))
            .border_style(if focused {
                Style::default().fg(Color::Yellow)
            } else {
                Style::default().fg(Color::DarkGray)
            });
        let inner = block.inner(*row);
        let value = match field {
            Field::Relay => &form.relay,
            Field::Username => &form.username,
            Field::Email => &form.email,
            Field::Password => &form.password,
            Field::Link => &form.link,
            Field::BackupFile => &form.backup_file,
            Field::BackupPass => &form.backup_pass,
        };
        let (text, cursor) = value.view(inner.width.saturating_sub(1), field.masked());
        f.render_widget(Paragraph::new(text).block(block), *row);
        if focused {
            f.set_cursor_position(Position::new(inner.x + cursor, inner.y));
        }
    }

    if let (Some((msg, level)), Some(r)) = (&form.message, rows.get(n as usize + 1)) {
        let style = match level {
            Level::Info => Style::default().fg(Color::Green),
            Level::Busy => Style::default().fg(Color::Yellow),
            Level::Error => Style::default().fg(Color::Red).add_modifier(Modifier::BOLD),
        };
        f.render_widget(
            Paragraph::new(msg.as_str())
                .style(style)
                .wrap(Wrap { trim: true }),
            r.inner(ratatui::layout::Margin::new(1, 0)),
        );
    }
    if let Some(r) = rows.last() {
        f.render_widget(
            Paragraph::new("Tab/↓ next field · Shift-Tab/↑ previous · Enter submit · Esc quit")
                .style(Style::default().fg(Color::DarkGray))
                .alignment(Alignment::Center),
            *r,
        );
    }
}

trait BoldTitle {
    fn bold_title(self) -> Self;
}

impl BoldTitle for Line<'_> {
    fn bold_title(self) -> Self {
        self.style(
            Style::default()
                .add_modifier(Modifier::BOLD)
                .fg(Color::Cyan),
        )
    }
}
