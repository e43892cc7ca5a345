//! Drawing the chat: a warning banner when an identity key changed, the room
//! list and contacts on the left, the conversation, who is typing, transfers,
//! the input line and the status line.

use ratatui::Frame;
use ratatui::layout::{Alignment, Constraint, Layout, Position, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Borders, Gauge, List, ListItem, ListState, Paragraph};
use sotto_client::sotto_core::api::RoomKind;
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};
use uuid::Uuid;

use crate::app::{App, ChatLine, ConnState, Level, LineBody, RoomView, SendMark, SendState};
use crate::commands::trust_tag;

const PALETTE: [Color; 6] = [
    Color::Magenta,
    Color::Yellow,
    Color::Green,
    Color::LightRed,
    Color::LightMagenta,
    Color::LightGreen,
];

fn user_color(app: &App, user: Uuid) -> Color {
    if user == app.me {
        return Color::LightBlue;
    }
    let h = user.as_bytes().iter().fold(0usize, |a, b| {
        a.wrapping_mul(31).wrapping_add(usize::from(*b))
    });
    PALETTE
        .get(h % PALETTE.len())
        .copied()
        .unwrap_or(Color::White)
}

fn level_style(level: Level) -> Style {
    match level {
        Level::Info => Style::default().fg(Color::Gray),
        Level::Good => Style::default().fg(Color::Green),
        Level::Warn => Style::default().fg(Color::Yellow),
        Level::Error => Style::default()
            .fg(Color::LightRed)
            .add_modifier(Modifier::BOLD),
    }
}

fn dim() -> Style {
    Style::default().fg(Color::DarkGray)
}

fn fmt_time(ms: u64, offset: time::UtcOffset) -> String {
    let secs = i64::try_from(ms / 1000).unwrap_or(0);
    let t = time::OffsetDateTime::from_unix_timestamp(secs)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        .to_offset(offset);
    format!("{:02}:{:02}", t.hour(), t.minute())
}

/// Word-wraps `text` to `width` columns (hard-splitting long words); control
/// characters are neutralised.
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut out = Vec::new();
    for para in text.split('\n') {
        // Keep the indentation of a line (lists in help and command output).
        let body = para.trim_start_matches(' ');
        let lead = (para.len() - body.len()).min(width / 2);
        let mut cur = " ".repeat(lead);
        let mut cur_w = lead;
        for (i, word) in body.split(' ').enumerate() {
            let word: String = word
                .chars()
                .map(|c| {
                    if c == '\t' {
                        ' '
                    } else if c.is_control() {
                        '\u{fffd}'
                    } else {
                        c
                    }
                })
                .collect();
            let ww = word.width();
            if i > 0 && cur_w + 1 + ww > width && ww <= width {
                out.push(std::mem::take(&mut cur));
                cur_w = 0;
            } else if i > 0 {
                cur.push(' ');
                cur_w += 1;
            }
            for c in word.chars() {
                let cw = c.width().unwrap_or(0);
                if cur_w + cw > width {
                    out.push(std::mem::take(&mut cur));
                    cur_w = 0;
                }
                cur.push(c);
                cur_w += cw;
            }
        }
        out.push(cur);
    }
    out
}

pub fn draw(f: &mut Frame<'_>, app: &mut App) {
    let area = f.area();
    let banner_h = if app.alerts.is_empty() {
        0
    } else {
        4 + app.alerts.len().min(3) as u16
    };
    let [banner, main, status] = Layout::vertical([
        Constraint::Length(banner_h),
        Constraint::Min(5),
        Constraint::Length(1),
    ])
    .areas(area);
    if banner_h > 0 {
        draw_banner(f, app, banner);
    }
    let side_w = 30.min(area.width / 3);
    let [side, chat] =
        Layout::horizontal([Constraint::Length(side_w), Constraint::Min(20)]).areas(main);
    draw_sidebar(f, app, side);
    let n_transfers = app.transfers.len().min(3) as u16;
    let [msgs, typing, xfers, input] = Layout::vertical([
        Constraint::Min(3),
        Constraint::Length(1),
        Constraint::Length(n_transfers),
        Constraint::Length(3),
    ])
    .areas(chat);
    draw_messages(f, app, msgs);
    draw_typing(f, app, typing);
    draw_transfers(f, app, xfers);
    draw_input(f, app, input);
    draw_status(f, app, status);
}

fn draw_banner(f: &mut Frame<'_>, app: &App, area: Rect) {
    let red = Style::default().fg(Color::White).bg(Color::Red);
    let mut lines = vec![
        Line::from(Span::styled(
            "⚠  SECURITY WARNING — IDENTITY KEY CHANGED  ⚠",
            red.add_modifier(Modifier::BOLD | Modifier::SLOW_BLINK),
        ))
        .alignment(Alignment::Center),
    ];
    let mut names = Vec::new();
    for (user, was_verified) in app.alerts.iter().take(3) {
        let who = app.name_of(*user);
        lines.push(Line::from(Span::styled(
            format!(
                "{who}'s identity key changed{}. It may be a reinstall — or someone impersonating {who}. Nothing is sent to or shown from {who} until you accept.",
                if *was_verified { " (it had been VERIFIED)" } else { "" }
            ),
            red.add_modifier(Modifier::BOLD),
        )));
        names.push(who);
    }
    let first = names.first().cloned().unwrap_or_default();
    lines.push(Line::from(Span::styled(
        format!("Compare safety numbers over a channel you trust (/verify {first}), then /accept {first}."),
        red,
    )));
    let block = Block::default()
        .borders(Borders::ALL)
        .border_type(BorderType::Thick)
        .border_style(Style::default().fg(Color::LightRed).bg(Color::Red))
        .style(red);
    f.render_widget(Paragraph::new(lines).block(block), area);
}

fn presence_dot(app: &App, user: Uuid) -> Span<'static> {
    if app.presence.get(&user).copied().unwrap_or(false) {
        Span::styled("●", Style::default().fg(Color::Green))
    } else {
        Span::styled("○", dim())
    }
}

fn draw_sidebar(f: &mut Frame<'_>, app: &App, area: Rect) {
    let contacts_h = (app.contacts.len() as u16 + 2)
        .clamp(3, 12)
        .min(area.height / 2);
    let [rooms_area, contacts_area] =
        Layout::vertical([Constraint::Min(3), Constraint::Length(contacts_h)]).areas(area);
    let mut items = vec![ListItem::new(Line::from(vec![
        Span::raw("⌂ "),
        Span::styled("home", Style::default().add_modifier(Modifier::BOLD)),
    ]))];
    for room in &app.rooms {
        let mut spans = Vec::new();
        match room.kind {
            RoomKind::Direct => {
                let dot = room
                    .peer(app.me)
                    .map_or_else(|| Span::raw("○"), |p| presence_dot(app, p));
                spans.push(dot);
                spans.push(Span::raw(" "));
            }
            RoomKind::Group => spans.push(Span::styled("# ", Style::default().fg(Color::Cyan))),
        }
        if room.members.iter().any(|m| app.alerts.contains_key(m)) {
            spans.push(Span::styled(
                "⚠ ",
                Style::default()
                    .fg(Color::LightRed)
                    .add_modifier(Modifier::BOLD),
            ));
        }
        let title = app.room_title(room);
        let name_style = if room.unread > 0 {
            Style::default()
                .add_modifier(Modifier::BOLD)
                .fg(Color::White)
        } else {
            Style::default()
        };
        spans.push(Span::styled(title, name_style));
        if room.unread > 0 {
            spans.push(Span::styled(
                format!(" ({})", room.unread),
                Style::default()
                    .fg(Color::Yellow)
                    .add_modifier(Modifier::BOLD),
            ));
        }
        items.push(ListItem::new(Line::from(spans)));
    }
    let list = List::new(items)
        .block(
            Block::default()
                .borders(Borders::ALL)
                .border_type(BorderType::Rounded)
                .title(" Rooms ")
                .title_bottom(Line::from(" Tab ⇅ ").alignment(Alignment::Right)),
        )
        .highlight_style(
            Style::default()
                .bg(Color::Blue)
                .fg(Color::White)
                .add_modifier(Modifier::BOLD),
        )
        .highlight_symbol("▶");
    let mut state = ListState::default().with_selected(Some(app.selected));
    f.render_stateful_widget(list, rooms_area, &mut state);

    let mut lines = Vec::new();
    for c in &app.contacts {
        let mut spans = vec![
            presence_dot(app, c.user.id),
            Span::raw(" "),
            Span::raw(c.user.username.clone()),
        ];
        if let Some(n) = &c.nickname {
            spans.push(Span::styled(format!(" “{n}”"), dim()));
        }
        lines.push(Line::from(spans));
    }
    if lines.is_empty() {
        lines.push(Line::from(Span::styled("/add <user>", dim())));
    }
    f.render_widget(
        Paragraph::new(lines).block(
            Block::default()
                .borders(Borders::ALL)
                .border_type(BorderType::Rounded)
                .title(" Contacts "),
        ),
        contacts_area,
    );
}

/// The rows of one line of the conversation.
fn line_rows(
    app: &App,
    room: Option<&RoomView>,
    line: &ChatLine,
    width: usize,
) -> Vec<Line<'static>> {
    let time = Span::styled(fmt_time(line.at_ms, app.offset), dim());
    match &line.body {
        LineBody::Msg {
            sender,
            own,
            text,
            seq,
            state,
            trust,
            file,
            ..
        } => {
            let mark = if *own {
                match (state, seq) {
                    (SendState::Sending, _) => Span::styled("… ", dim()),
                    (SendState::Failed, _) => {
                        Span::styled("✗ ", Style::default().fg(Color::LightRed))
                    }
                    (SendState::Queued, _) => {
                        Span::styled("↻ ", Style::default().fg(Color::Yellow))
                    }
                    (_, Some(s)) => match room.map_or(SendMark::Stored, |r| r.mark(*s)) {
                        SendMark::Stored => Span::styled("• ", dim()),
                        SendMark::Delivered => Span::styled("✓ ", Style::default().fg(Color::Gray)),
                        SendMark::Read => Span::styled(
                            "✓✓",
                            Style::default()
                                .fg(Color::Cyan)
                                .add_modifier(Modifier::BOLD),
                        ),
                    },
                    (_, None) => Span::styled("• ", dim()),
                }
            } else {
                Span::raw("  ")
            };
            let name = app.name_of(*sender);
            let tag = if *own { "" } else { trust_tag(*trust) };
            let name_span = Span::styled(
                name,
                Style::default()
                    .fg(user_color(app, *sender))
                    .add_modifier(Modifier::BOLD),
            );
            let prefix = vec![
                time,
                Span::raw(" "),
                mark,
                Span::raw(" "),
                name_span,
                Span::styled(tag.to_owned(), Style::default().fg(Color::Green)),
                Span::raw(": "),
            ];
            let prefix_w: usize = prefix.iter().map(|s| s.content.width()).sum();
            let (indent, body_w) = if width > prefix_w + 12 {
                (prefix_w, width - prefix_w)
            } else {
                (2, width.saturating_sub(2).max(1))
            };
            let body_style = if file.is_some() {
                Style::default().fg(Color::LightCyan)
            } else if *state == SendState::Failed {
                Style::default()
                    .fg(Color::DarkGray)
                    .add_modifier(Modifier::CROSSED_OUT)
            } else {
                Style::default()
            };
            let mut rows = Vec::new();
            let wrapped = wrap(text, body_w);
            if indent == prefix_w {
                for (i, w) in wrapped.into_iter().enumerate() {
                    let mut spans = if i == 0 {
                        prefix.clone()
                    } else {
                        vec![Span::raw(" ".repeat(indent))]
                    };
                    spans.push(Span::styled(w, body_style));
                    rows.push(Line::from(spans));
                }
            } else {
                rows.push(Line::from(prefix));
                for w in wrapped {
                    rows.push(Line::from(vec![
                        Span::raw("  "),
                        Span::styled(w, body_style),
                    ]));
                }
            }
            rows
        }
        LineBody::System { text, level } => {
            let indent = 9;
            let body_w = width.saturating_sub(indent).max(8);
            wrap(text, body_w)
                .into_iter()
                .enumerate()
                .map(|(i, w)| {
                    let head = if i == 0 {
                        time.clone()
                    } else {
                        Span::raw("     ")
                    };
                    Line::from(vec![
                        head,
                        Span::raw("    "),
                        Span::styled(w, level_style(*level)),
                    ])
                })
                .collect()
        }
        LineBody::Hidden { count } => {
            let text = format!(
                "({count} earlier message{} sealed before this device was set up: not readable here)",
                if *count == 1 { " was" } else { "s were" }
            );
            wrap(&text, width.saturating_sub(9).max(8))
                .into_iter()
                .map(|w| {
                    Line::from(vec![
                        Span::raw("         "),
                        Span::styled(w, dim().add_modifier(Modifier::ITALIC)),
                    ])
                })
                .collect()
        }
    }
}

fn room_header(app: &App, room: &RoomView) -> Line<'static> {
    let mut spans = vec![Span::styled(
        format!(" {} ", app.room_title(room)),
        Style::default()
            .add_modifier(Modifier::BOLD)
            .fg(Color::White),
    )];
    match room.kind {
        RoomKind::Direct => {
            if let Some(p) = room.peer(app.me) {
                let online = app.presence.get(&p).copied().unwrap_or(false);
                spans.push(presence_dot(app, p));
                spans.push(Span::styled(
                    if online { " online" } else { " offline" },
                    dim(),
                ));
                let trust = if app.alerts.contains_key(&p) {
                    Span::styled(
                        " · ⚠ KEY CHANGED",
                        Style::default()
                            .fg(Color::LightRed)
                            .add_modifier(Modifier::BOLD),
                    )
                } else {
                    match app.session.pin(p) {
                        Some(pin) if pin.verified => {
                            Span::styled(" · verified ✔", Style::default().fg(Color::Green))
                        }
                        _ => Span::styled(" · not verified (/verify)", dim()),
                    }
                };
                spans.push(trust);
            }
        }
        RoomKind::Group => {
            let online = room
                .members
                .iter()
                .filter(|m| **m != app.me && app.presence.get(m).copied().unwrap_or(false))
                .count();
            spans.push(Span::styled(
                format!("· {} members, {online} online (/who)", room.members.len()),
                dim(),
            ));
        }
    }
    spans.push(Span::raw(" "));
    Line::from(spans)
}

fn draw_messages(f: &mut Frame<'_>, app: &mut App, area: Rect) {
    let room = app.current_room();
    let title = match room {
        Some(r) => room_header(app, r),
        None => Line::from(Span::styled(
            " ⌂ Home ",
            Style::default().add_modifier(Modifier::BOLD),
        )),
    };
    let block = Block::default()
        .borders(Borders::ALL)
        .border_type(BorderType::Rounded)
        .title(title);
    let inner = block.inner(area);
    let (width, height) = (usize::from(inner.width), usize::from(inner.height));
    let lines: &[ChatLine] = room.map_or(&app.home, |r| &r.lines);
    let scroll = room.map_or(app.home_scroll, |r| r.scroll);

    // Rows from the bottom up, only as many as needed.
    let mut rows: Vec<Line<'static>> = Vec::new();
    let mut reached_top = true;
    for line in lines.iter().rev() {
        let mut r = line_rows(app, room, line, width);
        r.reverse();
        rows.extend(r);
        if rows.len() >= height + scroll {
            reached_top = false;
            break;
        }
    }
    let scroll = if reached_top {
        scroll.min(rows.len().saturating_sub(height))
    } else {
        scroll
    };
    let shown: Vec<Line<'static>> = rows
        .iter()
        .skip(scroll)
        .take(height)
        .rev()
        .cloned()
        .collect();
    let mut block = block;
    if scroll > 0 {
        block = block.title_bottom(
            Line::from(Span::styled(
                format!(" ↓ {scroll} more rows below (PgDn) "),
                Style::default().fg(Color::Yellow),
            ))
            .alignment(Alignment::Right),
        );
    }
    // Top-aligned when the view is not full.
    f.render_widget(Paragraph::new(shown).block(block), area);
    app.page_rows = height;
    match app
        .selected
        .checked_sub(1)
        .and_then(|i| app.rooms.get_mut(i))
    {
        Some(r) => r.scroll = scroll,
        None => app.home_scroll = scroll,
    }
}

fn draw_typing(f: &mut Frame<'_>, app: &App, area: Rect) {
    let Some(room) = app.current_room() else {
        return;
    };
    let mut names: Vec<String> = room.typing.keys().map(|u| app.name_of(*u)).collect();
    names.sort();
    let text = match names.as_slice() {
        [] => return,
        [a] => format!("{a} is typing…"),
        [a, b] => format!("{a} and {b} are typing…"),
        more => format!("{} people are typing…", more.len()),
    };
    f.render_widget(
        Paragraph::new(Span::styled(
            format!(" {text}"),
            Style::default()
                .fg(Color::Yellow)
                .add_modifier(Modifier::ITALIC),
        )),
        area,
    );
}

fn draw_transfers(f: &mut Frame<'_>, app: &App, area: Rect) {
    for (i, t) in app
        .transfers
        .iter()
        .take(usize::from(area.height))
        .enumerate()
    {
        let row = Rect {
            y: area.y + i as u16,
            height: 1,
            ..area
        };
        let ratio = if t.total == 0 {
            1.0
        } else {
            (t.done as f64 / t.total as f64).clamp(0.0, 1.0)
        };
        let arrow = if t.upload { "↑" } else { "↓" };
        let label = match t.finished {
            Some((_, true)) => format!("{arrow} {} — done", t.label),
            Some((_, false)) => format!("{arrow} {} — failed", t.label),
            None => format!(
                "{arrow} {} — {:.0}% ({} / {})",
                t.label,
                ratio * 100.0,
                crate::app::human_size(t.done),
                crate::app::human_size(t.total)
            ),
        };
        let color = match t.finished {
            Some((_, false)) => Color::Red,
            _ => Color::Green,
        };
        f.render_widget(
            Gauge::default()
                .gauge_style(Style::default().fg(color).bg(Color::DarkGray))
                .ratio(ratio)
                .label(label),
            row,
        );
    }
}

fn draw_input(f: &mut Frame<'_>, app: &App, area: Rect) {
    let (title, masked, style) = match &app.prompt {
        Some(p) => (
            format!(" {} ", p.label),
            p.masked,
            Style::default().fg(Color::Yellow),
        ),
        None => match app.current_room() {
            Some(r) => (
                format!(
                    " Message {} — Enter to send, /help for commands ",
                    app.room_title(r)
                ),
                false,
                Style::default().fg(Color::Cyan),
            ),
            None => (
                " Command — /dm <user> to start a chat, /help for more ".to_owned(),
                false,
                Style::default().fg(Color::Cyan),
            ),
        },
    };
    let block = Block::default()
        .borders(Borders::ALL)
        .border_type(BorderType::Rounded)
        .border_style(style)
        .title(title);
    let inner = block.inner(area);
    let (text, cursor) = app.input.view(inner.width.saturating_sub(1), masked);
    f.render_widget(Paragraph::new(text).block(block), area);
    f.set_cursor_position(Position::new(inner.x + cursor, inner.y));
}

fn draw_status(f: &mut Frame<'_>, app: &App, area: Rect) {
    let conn = match &app.connection {
        ConnState::Online => Span::styled(
            " ● online ",
            Style::default().fg(Color::Black).bg(Color::Green),
        ),
        ConnState::Connecting => Span::styled(
            " ◌ connecting… ",
            Style::default().fg(Color::Black).bg(Color::Yellow),
        ),
        ConnState::Offline { reason, retry_at } => {
            let secs = retry_at
                .saturating_duration_since(std::time::Instant::now())
                .as_secs();
            Span::styled(
                format!(" ○ offline — retrying in {secs} s ({reason}) "),
                Style::default().fg(Color::White).bg(Color::Red),
            )
        }
    };
    let mut spans = vec![
        conn,
        Span::raw(" "),
        Span::styled(
            app.my_name.clone(),
            Style::default()
                .fg(Color::LightBlue)
                .add_modifier(Modifier::BOLD),
        ),
        Span::styled(" │ ", dim()),
    ];
    if let Some((text, level)) = &app.status {
        spans.push(Span::styled(text.clone(), level_style(*level)));
    } else {
        spans.push(Span::styled(
            "Tab switch room · PgUp/PgDn scroll · /help · Esc quit",
            dim(),
        ));
    }
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}

#[cfg(test)]
mod tests {
    use super::wrap;

    #[test]
    fn wraps_words_and_splits_long_ones() {
        assert_eq!(wrap("hello big world", 9), vec!["hello big", "world"]);
        assert_eq!(wrap("abcdefghij", 4), vec!["abcd", "efgh", "ij"]);
        assert_eq!(wrap("a\nb", 10), vec!["a", "b"]);
        assert_eq!(wrap("", 10), vec![""]);
        assert_eq!(wrap("  a b", 10), vec!["  a b"]);
    }
}
