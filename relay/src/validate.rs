//! Validated domain values: usernames, e-mail addresses, passwords.

use crate::error::{ApiError, ApiResult};
use sotto_core::api::problem::codes;

/// Minimum password length in characters.
pub const PASSWORD_MIN_CHARS: usize = 8;
/// Maximum password length in characters.
pub const PASSWORD_MAX_CHARS: usize = 1024;

/// A canonical (lower-case) username: 3–32 characters of `a-z 0-9 _ . -`,
/// starting with a letter or digit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub fn parse(raw: &str) -> Result<Self, ApiError> {
        let s = raw.trim().to_ascii_lowercase();
        let ok_len = (3..=32).contains(&s.len());
        let ok_chars = s.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.' | b'-')
        });
        let ok_start = s.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric());
        if !(ok_len && ok_chars && ok_start) || raw.len() > 64 {
            return Err(ApiError::bad_request(
                codes::INVALID_USERNAME,
                "usernames are 3-32 characters: letters, digits, '_', '.', '-', starting with a letter or digit",
            ));
        }
        Ok(Self(s))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A canonical (lower-case) e-mail address with one `@`, a dotted domain, no
/// spaces or control characters, at most 254 bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, ApiError> {
        let s = raw.trim().to_lowercase();
        let bad = || ApiError::bad_request(codes::INVALID_EMAIL, "not a valid e-mail address");
        if s.len() > 254
            || s.chars().any(|c| {
                c.is_whitespace()
                    || c.is_control()
                    || matches!(c, '<' | '>' | '"' | ',' | ';' | '\\')
            })
        {
            return Err(bad());
        }
        let (local, domain) = s.split_once('@').ok_or_else(bad)?;
        if local.is_empty()
            || local.len() > 64
            || domain.contains('@')
            || !domain.contains('.')
            || domain.starts_with('.')
            || domain.ends_with('.')
            || domain.contains("..")
        {
            return Err(bad());
        }
        Ok(Self(s))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Checks a new password: length bounds and not one of the most common passwords.
pub fn check_new_password(password: &str) -> Result<(), ApiError> {
    if password.len() > 4 * PASSWORD_MAX_CHARS || password.chars().count() > PASSWORD_MAX_CHARS {
        return Err(ApiError::bad_request(
            codes::WEAK_PASSWORD,
            "passwords are at most 1024 characters",
        ));
    }
    if password.chars().count() < PASSWORD_MIN_CHARS {
        return Err(ApiError::bad_request(
            codes::WEAK_PASSWORD,
            "passwords are at least 8 characters",
        ));
    }
    let lower = password.to_lowercase();
    if COMMON_PASSWORDS.binary_search(&lower.as_str()).is_ok() {
        return Err(ApiError::bad_request(
            codes::WEAK_PASSWORD,
            "this password is too common",
        ));
    }
    Ok(())
}

/// Lower-cased common passwords of 8+ characters (from public breach top lists), sorted.
static COMMON_PASSWORDS: &[&str] = &[
    "00000000",
    "11111111",
    "111111111",
    "1111111111",
    "11223344",
    "12121212",
    "123123123",
    "12341234",
    "12344321",
    "12345678",
    "123456789",
    "1234567890",
    "12345678910",
    "123456789a",
    "1234qwer",
    "123qweasd",
    "1q2w3e4r",
    "1q2w3e4r5t",
    "1qaz2wsx",
    "1qazxsw2",
    "22222222",
    "55555555",
    "66666666",
    "77777777",
    "87654321",
    "88888888",
    "987654321",
    "99999999",
    "a1234567",
    "a12345678",
    "aa123456",
    "abc12345",
    "abcd1234",
    "abcdefgh",
    "access14",
    "admin123",
    "adminadmin",
    "asdf1234",
    "asdfasdf",
    "asdfghjk",
    "asdfghjkl",
    "azerty123",
    "babygirl",
    "baseball",
    "basketball",
    "batman123",
    "blink182",
    "butterfly",
    "charlie1",
    "chocolate",
    "computer",
    "corvette",
    "dearbook",
    "dragon123",
    "elephant",
    "football",
    "football1",
    "freedom1",
    "gfhjkmrf",
    "googledummy",
    "iloveyou",
    "iloveyou1",
    "iloveyou2",
    "jennifer",
    "jordan23",
    "killer123",
    "letmein1",
    "liverpool",
    "loveme123",
    "master123",
    "mercedes",
    "michelle",
    "midnight",
    "monkey123",
    "mustang1",
    "naruto123",
    "nicholas",
    "passw0rd",
    "password",
    "password1",
    "password12",
    "password123",
    "password1234",
    "princess",
    "princess1",
    "q1w2e3r4",
    "q1w2e3r4t5",
    "q1w2e3r4t5y6",
    "qazwsxedc",
    "qwer1234",
    "qwerty12",
    "qwerty123",
    "qwerty1234",
    "qwertyui",
    "qwertyuiop",
    "samantha",
    "sebastian",
    "security",
    "shadow12",
    "starwars",
    "sunshine",
    "superman",
    "trustno1",
    "welcome1",
    "welcome123",
    "whatever",
    "zaq12wsx",
    "zxcvbnm1",
    "zxcvbnm123",
];

/// A short human-readable label (device name, room name, nickname): trimmed,
/// 1 to `max` characters, no control characters (bidi overrides included).
pub fn check_label(raw: &str, field: &str, max: usize) -> Result<String, ApiError> {
    let t = raw.trim();
    let bad = t.is_empty() || t.chars().count() > max || t.chars().any(refused_in_labels);
    if bad {
        return Err(ApiError::bad_request(
            codes::VALIDATION_FAILED,
            format!("`{field}` must be 1-{max} printable characters"),
        ));
    }
    Ok(t.to_string())
}

/// Characters no label (room, display, device and contact names) may hold:
/// control characters, and the bidirectional embeddings, overrides, isolates
/// and marks that make a name display as something it is not.
pub fn refused_in_labels(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' | '\u{061c}'
        )
}

/// Rejects search text no account could match (control characters, overlong).
pub fn check_query_text(q: &str) -> ApiResult<()> {
    if q.len() > 256 || q.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            codes::VALIDATION_FAILED,
            "the query text is invalid",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_refuse_controls_and_bidi_controls() {
        for bad in [
            "a\u{202e}gnp.exe",
            "x\u{2067}y",
            "\u{200f}admin",
            "a\u{0007}b",
            "a\nb",
            "\u{061c}x",
            "",
            "   ",
        ] {
            assert!(check_label(bad, "name", 64).is_err(), "{bad:?}");
        }
        assert_eq!(check_label(" Zoë 👩‍💻 ", "name", 64).unwrap(), "Zoë 👩‍💻");
        assert!(check_label(&"a".repeat(65), "name", 64).is_err());
    }

    #[test]
    fn common_list_is_sorted_for_binary_search() {
        assert!(COMMON_PASSWORDS.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn usernames() {
        assert_eq!(Username::parse(" Alice_1 ").unwrap().as_str(), "alice_1");
        for bad in [
            "ab",
            "_alice",
            "al ice",
            "alicé",
            "a".repeat(33).as_str(),
            "bob\u{0}",
        ] {
            assert!(Username::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn emails() {
        assert_eq!(
            Email::parse("Bob@Example.ORG").unwrap().as_str(),
            "bob@example.org"
        );
        for bad in [
            "bob",
            "bob@",
            "@x.org",
            "bob@localhost",
            "a b@x.org",
            "a@b@c.org",
            "a@x..org",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn passwords() {
        assert!(check_new_password("Password123").is_err());
        assert!(check_new_password("short").is_err());
        assert!(check_new_password(&"x".repeat(1025)).is_err());
        assert!(check_new_password("a sufficiently long passphrase").is_ok());
    }
}
