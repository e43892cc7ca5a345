//! The session's tokens for the TypeScript client's `Relay`: the engine's
//! [`sotto_engine::auth::Tokens`] (the native SDK's code). The engine decides
//! when the access token is refreshed, that one refresh runs at a time (a
//! refresh token is single-use), what a `401` means and when the session has
//! ended; `Relay` makes the `POST /auth/refresh` and reports how it ended.

use sotto_engine::auth::{Access, Issued, Refreshed, Tokens};
use wasm_bindgen::JsValue;
use wasm_bindgen::prelude::wasm_bindgen;
use zeroize::Zeroizing;

use crate::error::Result;
use crate::js::{self, Obj};

#[wasm_bindgen(typescript_custom_section)]
const TS_AUTH: &'static str = r#"
/** What a caller that needs the access token does (`ClientTokens.access`, `rejected`, `force`). */
export type TokenAccess =
  /** Send this access token. */
  | { kind: "use"; token: string }
  /** Refresh with `refreshToken` (once: only a request that never left may go again), then `refreshed` or `refreshFailed` with `ticket`; then ask again. */
  | { kind: "refresh"; ticket: number; refreshToken: string }
  /** A refresh is in flight: wait until it ends, then ask again. */
  | { kind: "join" }
  /** No session. */
  | { kind: "loggedOut" };
"#;

/// The session's tokens and the refresh in flight (the engine's `Tokens`).
#[wasm_bindgen]
pub struct ClientTokens {
    inner: Tokens,
}

fn access(a: Access) -> JsValue {
    let kind = |k: &str| Obj::new().set("kind", k);
    match a {
        Access::Use(token) => kind("use").set("token", token.as_str()),
        Access::Refresh { ticket, refresh } => kind("refresh")
            .set("ticket", js::number(ticket))
            .set("refreshToken", refresh.as_str()),
        Access::Join => kind("join"),
        Access::LoggedOut => kind("loggedOut"),
    }
    .into_typed::<JsValue>()
}

fn issued(access: String, refresh: String, expires_in_s: f64) -> Result<Issued> {
    Ok(Issued {
        access: Zeroizing::new(access),
        refresh: Zeroizing::new(refresh),
        expires_in_s: js::safe_u64(expires_in_s.max(0.0).floor(), "expiresIn")?,
    })
}

#[wasm_bindgen]
impl ClientTokens {
    /// No session.
    #[wasm_bindgen(constructor)]
    #[allow(clippy::new_without_default)]
    pub fn new() -> ClientTokens {
        Self {
            inner: Tokens::new(),
        }
    }

    /// A login's tokens at `nowMs` (`expiresIn`: seconds, as the relay says).
    #[wasm_bindgen(js_name = loggedIn)]
    pub fn logged_in(
        &mut self,
        #[wasm_bindgen(js_name = nowMs)] now_ms: f64,
        access: String,
        refresh: String,
        #[wasm_bindgen(js_name = expiresIn)] expires_in: f64,
    ) -> Result<()> {
        let now = js::safe_u64(now_ms, "nowMs")?;
        self.inner
            .logged_in(now, issued(access, refresh, expires_in)?);
        Ok(())
    }

    /// Whether there is a session.
    #[wasm_bindgen(getter, js_name = isLoggedIn)]
    pub fn is_logged_in(&self) -> bool {
        self.inner.is_logged_in()
    }

    /// The access token for a call at `nowMs`.
    #[wasm_bindgen(unchecked_return_type = "TokenAccess")]
    pub fn access(&mut self, #[wasm_bindgen(js_name = nowMs)] now_ms: f64) -> Result<JsValue> {
        Ok(access(self.inner.access(js::safe_u64(now_ms, "nowMs")?)))
    }

    /// A refresh now, due or not.
    #[wasm_bindgen(unchecked_return_type = "TokenAccess")]
    pub fn force(&mut self) -> JsValue {
        access(self.inner.force())
    }

    /// The relay answered `401` to a call that carried `used`.
    #[wasm_bindgen(unchecked_return_type = "TokenAccess")]
    pub fn rejected(&mut self, used: &str) -> JsValue {
        access(self.inner.rejected(used))
    }

    /// The refresh `ticket` brought new tokens; whether it counted (false:
    /// a login or logout overtook it; keep nothing of it).
    pub fn refreshed(
        &mut self,
        #[wasm_bindgen(js_name = nowMs)] now_ms: f64,
        ticket: f64,
        access: String,
        refresh: String,
        #[wasm_bindgen(js_name = expiresIn)] expires_in: f64,
    ) -> Result<bool> {
        let outcome = Refreshed::Tokens(issued(access, refresh, expires_in)?);
        Ok(self.inner.refreshed(
            js::safe_u64(now_ms, "nowMs")?,
            js::safe_u64(ticket, "ticket")?,
            outcome,
        ))
    }

    /// The refresh `ticket` failed: `revoked` (a `401`: the session ended),
    /// else the tokens stay for the next try.
    #[wasm_bindgen(js_name = refreshFailed)]
    pub fn refresh_failed(
        &mut self,
        #[wasm_bindgen(js_name = nowMs)] now_ms: f64,
        ticket: f64,
        revoked: bool,
    ) -> Result<()> {
        let outcome = if revoked {
            Refreshed::Revoked
        } else {
            Refreshed::Failed
        };
        self.inner.refreshed(
            js::safe_u64(now_ms, "nowMs")?,
            js::safe_u64(ticket, "ticket")?,
            outcome,
        );
        Ok(())
    }

    /// Whether the session ended by a refused refresh since the last call.
    #[wasm_bindgen(js_name = takeEnded)]
    pub fn take_ended(&mut self) -> bool {
        self.inner.take_ended()
    }

    /// Logging out: the refresh token to revoke at the relay (undefined: no
    /// session); no session from now on.
    pub fn logout(&mut self) -> Option<String> {
        self.inner.logout().map(|r| r.to_string())
    }
}
