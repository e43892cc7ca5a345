//! A one-line text field with a cursor: typing, editing keys and the
//! horizontal scrolling needed to keep the cursor visible.

use unicode_width::UnicodeWidthChar;
use zeroize::Zeroize;

/// A line of text being edited. The cursor is a char index.
#[derive(Debug, Default)]
pub struct Input {
    text: String,
    cursor: usize,
}

impl Drop for Input {
    fn drop(&mut self) {
        // Fields may hold passwords: wipe them when they go.
        self.text.zeroize();
    }
}

impl Input {
    pub fn with_text(text: &str) -> Self {
        Self {
            text: text.to_owned(),
            cursor: text.chars().count(),
        }
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    fn byte_at(&self, char_idx: usize) -> usize {
        self.text
            .char_indices()
            .nth(char_idx)
            .map_or(self.text.len(), |(i, _)| i)
    }

    fn len(&self) -> usize {
        self.text.chars().count()
    }

    pub fn insert(&mut self, c: char) {
        let at = self.byte_at(self.cursor);
        self.text.insert(at, c);
        self.cursor += 1;
    }

    /// Inserts pasted text (line breaks become spaces: this is one line).
    pub fn insert_str(&mut self, s: &str) {
        for c in s.chars() {
            match c {
                '\r' => {}
                '\n' | '\t' => self.insert(' '),
                c if c.is_control() => {}
                c => self.insert(c),
            }
        }
    }

    pub fn backspace(&mut self) {
        if self.cursor > 0 {
            self.cursor -= 1;
            let at = self.byte_at(self.cursor);
            self.text.remove(at);
        }
    }

    pub fn delete(&mut self) {
        if self.cursor < self.len() {
            let at = self.byte_at(self.cursor);
            self.text.remove(at);
        }
    }

    pub fn left(&mut self) {
        self.cursor = self.cursor.saturating_sub(1);
    }

    pub fn right(&mut self) {
        self.cursor = (self.cursor + 1).min(self.len());
    }

    pub fn home(&mut self) {
        self.cursor = 0;
    }

    pub fn end(&mut self) {
        self.cursor = self.len();
    }

    /// Ctrl-W: deletes the word before the cursor.
    pub fn delete_word(&mut self) {
        let chars: Vec<char> = self.text.chars().collect();
        let mut start = self.cursor.min(chars.len());
        while start > 0 && chars.get(start - 1).is_some_and(|c| c.is_whitespace()) {
            start -= 1;
        }
        while start > 0 && chars.get(start - 1).is_some_and(|c| !c.is_whitespace()) {
            start -= 1;
        }
        let (a, b) = (self.byte_at(start), self.byte_at(self.cursor));
        self.text.replace_range(a..b, "");
        self.cursor = start;
    }

    /// Ctrl-U: deletes everything before the cursor.
    pub fn delete_to_start(&mut self) {
        let b = self.byte_at(self.cursor);
        self.text.replace_range(..b, "");
        self.cursor = 0;
    }

    /// Ctrl-K: deletes everything after the cursor.
    pub fn delete_to_end(&mut self) {
        let b = self.byte_at(self.cursor);
        self.text.truncate(b);
    }

    /// Empties the field and returns what it held.
    pub fn take(&mut self) -> String {
        self.cursor = 0;
        std::mem::take(&mut self.text)
    }

    pub fn set(&mut self, text: &str) {
        self.text.zeroize();
        text.clone_into(&mut self.text);
        self.cursor = self.len();
    }

    /// What fits in `width` columns around the cursor, and the cursor's column.
    /// `masked` shows one bullet per character (passwords).
    pub fn view(&self, width: u16, masked: bool) -> (String, u16) {
        let width = usize::from(width.max(1));
        let chars: Vec<char> = if masked {
            self.text.chars().map(|_| '•').collect()
        } else {
            self.text.chars().collect()
        };
        let w = |c: &char| c.width().unwrap_or(0);
        // Start as far left as possible while the cursor still fits.
        let mut start = 0;
        loop {
            let used: usize = chars.iter().take(self.cursor).skip(start).map(w).sum();
            if used < width || start >= self.cursor {
                break;
            }
            start += 1;
        }
        let mut out = String::new();
        let mut used = 0;
        let mut cursor_col = 0;
        for (i, c) in chars.iter().enumerate().skip(start) {
            if i == self.cursor {
                cursor_col = used;
            }
            let cw = w(c);
            if used + cw > width {
                break;
            }
            out.push(*c);
            used += cw;
        }
        if self.cursor >= chars.len() {
            cursor_col = used;
        }
        (out, u16::try_from(cursor_col).unwrap_or(u16::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::Input;

    #[test]
    fn edits_and_views() {
        let mut i = Input::default();
        i.insert_str("hello world");
        i.delete_word();
        assert_eq!(i.text(), "hello ");
        i.home();
        i.insert('>');
        assert_eq!(i.text(), ">hello ");
        i.end();
        i.backspace();
        assert_eq!(i.text(), ">hello");
        let (v, c) = i.view(4, false);
        assert_eq!((v.as_str(), c), ("llo", 3));
        let (v, _) = i.view(20, true);
        assert_eq!(v.chars().count(), 6);
    }
}
