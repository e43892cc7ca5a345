//! One typed method per route of the relay API (`docs/relay.md`, the relay's
//! `GET /openapi.json`), in the order of the API contract.

use std::collections::BTreeMap;

use reqwest::{Method, header};
use sotto_core::api::auth::{
    CheckUsernameQuery, CheckUsernameResponse, ForgotPasswordRequest, LoginRequest, LogoutRequest,
    RegisterRequest, ResendVerificationRequest, ResetPasswordRequest, TokenResponse,
    VerifyEmailRequest,
};
use sotto_core::api::{
    AddContactRequest, AddMemberRequest, AddedMember, AttachmentCreated, BlockRequest, BlockedUser,
    Contact, CreateRoomRequest, CreateUserRequest, DeletePushSubscriptionRequest, Device,
    DeviceListQuery, DirectRoomRequest, Health, Invitation, KeysQueryRequest, KeysQueryResponse,
    Message, MessageListQuery, Page, PageQuery, PatchContactRequest, PatchRoomRequest,
    PatchUserRequest, PostMessageRequest, PostMessageResponse, PublicUser, PushSubscriptionRequest,
    PushTestResponse, PutDeviceRequest, Receipt, ReceiptKind, ReceiptRequest, RevokeDeviceRequest,
    Room, RoomDetails, RootInfo, UnreadResponse, User, UserListQuery, UserSearchQuery,
    VapidPublicKey,
};
use sotto_core::encoding::B64;
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::transport::{Auth, Client, Retry, decode, problem_of};

const NO_BODY: Option<&()> = None;

pub use sotto_core::api::token_from_link;

impl Client {
    // ---- Accounts and auth -------------------------------------------------

    /// `POST /api/v1/auth/register`: creates the account and sends the
    /// verification e-mail.
    pub async fn register(&self, username: &str, email: &str, password: &str) -> Result<User> {
        let body = RegisterRequest {
            username: username.into(),
            email: email.into(),
            password: password.into(),
        };
        self.call(
            Method::POST,
            "/api/v1/auth/register",
            Some(&body),
            Auth::Public,
            Retry::Once,
        )
        .await
    }

    /// `POST /api/v1/auth/verify-email` with the token, or the whole e-mailed
    /// link (see [`token_from_link`]).
    pub async fn verify_email(&self, link_or_token: &str) -> Result<User> {
        let body = VerifyEmailRequest {
            token: token_from_link(link_or_token),
        };
        self.call(
            Method::POST,
            "/api/v1/auth/verify-email",
            Some(&body),
            Auth::Public,
            Retry::Idempotent,
        )
        .await
    }

    /// `POST /api/v1/auth/resend-verification` (always accepted).
    pub async fn resend_verification(&self, email: &str) -> Result<()> {
        let body = ResendVerificationRequest {
            email: email.into(),
        };
        self.call_empty(
            Method::POST,
            "/api/v1/auth/resend-verification",
            Some(&body),
            Auth::Public,
            Retry::Idempotent,
        )
        .await
    }

    /// `POST /api/v1/auth/login`: starts a session; the client keeps its tokens
    /// and refreshes them by itself from now on.
    pub async fn login(&self, login: &str, password: &str) -> Result<User> {
        let body = LoginRequest {
            login: login.into(),
            password: password.into(),
        };
        let t: TokenResponse = self
            .call(
                Method::POST,
                "/api/v1/auth/login",
                Some(&body),
                Auth::Public,
                Retry::Once,
            )
            .await?;
        Ok(self.set_tokens(t).await)
    }

    /// `POST /api/v1/auth/logout`: revokes the session on the relay and forgets
    /// the tokens.
    pub async fn logout(&self) -> Result<()> {
        let token = self.access_token().await?;
        let Some(refresh) = self.take_refresh_token().await else {
            return Ok(());
        };
        let body = LogoutRequest {
            refresh_token: refresh.to_string(),
        };
        let res = self
            .http()
            .post(format!("{}/api/v1/auth/logout", self.base_url()))
            .bearer_auth(token.as_str())
            .json(&body)
            .timeout(self.options().request_timeout)
            .send()
            .await
            .map_err(|e| Error::Network(e.to_string()))?;
        if res.status().is_success() {
            Ok(())
        } else {
            Err(problem_of(res, None).await)
        }
    }

    /// `POST /api/v1/auth/password/forgot` (always accepted).
    pub async fn forgot_password(&self, email: &str) -> Result<()> {
        let body = ForgotPasswordRequest {
            email: email.into(),
        };
        self.call_empty(
            Method::POST,
            "/api/v1/auth/password/forgot",
            Some(&body),
            Auth::Public,
            Retry::Idempotent,
        )
        .await
    }

    /// `POST /api/v1/auth/password/reset` with the e-mailed token (or link).
    pub async fn reset_password(&self, link_or_token: &str, new_password: &str) -> Result<()> {
        let body = ResetPasswordRequest {
            token: token_from_link(link_or_token),
            new_password: new_password.into(),
        };
        self.call_empty(
            Method::POST,
            "/api/v1/auth/password/reset",
            Some(&body),
            Auth::Public,
            Retry::Once,
        )
        .await
    }

    /// `GET /api/v1/auth/me`.
    pub async fn me(&self) -> Result<User> {
        self.call(
            Method::GET,
            "/api/v1/auth/me",
            NO_BODY,
            Auth::Bearer,
            Retry::Idempotent,
        )
        .await
    }

    /// `GET /api/v1/users/check-username`.
    pub async fn check_username(&self, username: &str) -> Result<bool> {
        let q = CheckUsernameQuery {
            username: username.into(),
        };
        let r: CheckUsernameResponse = self
            .get_query("/api/v1/users/check-username", &q, Auth::Public)
            .await?;
        Ok(r.available)
    }

    // ---- Users and roles ---------------------------------------------------

    /// `GET /api/v1/users` (admins).
    pub async fn list_users(&self, query: &UserListQuery) -> Result<Page<User>> {
        self.get_query("/api/v1/users", query, Auth::Bearer).await
    }

    /// `GET /api/v1/users/search?q=`: verified users by username prefix.
    pub async fn search_users(&self, query: &UserSearchQuery) -> Result<Page<PublicUser>> {
        self.get_query("/api/v1/users/search", query, Auth::Bearer)
            .await
    }

    /// `GET /api/v1/users/{id}` (self or admins).
    pub async fn get_user(&self, id: Uuid) -> Result<User> {
        self.call(
            Method::GET,
            &format!("/api/v1/users/{id}"),
            NO_BODY,
            Auth::Bearer,
            Retry::Idempotent,
        )
        .await
    }

    /// `POST /api/v1/users` (admins).
    pub async fn create_user(&self, body: &CreateUserRequest) -> Result<User> {
        self.call(
            Method::POST,
            "/api/v1/users",
            Some(body),
            Auth::Bearer,
            Retry::Once,
        )
        .await
    }

    /// `PATCH /api/v1/users/{id}`.
    pub async fn patch_user(&self, id: Uuid, body: &PatchUserRequest) -> Result<User> {
        self.call(
            Method::PATCH,
            &format!("/api/v1/users/{id}"),
            Some(body),
            Auth::Bearer,
            Retry::Idempotent,
        )
        .await
    }

    /// `DELETE /api/v1/users/{id}` (admins).
    pub async fn delete_user(&self, id: Uuid) -> Result<()> {
        self.call_empty(
            Method::DELETE,
            &format!("/api/v1/users/{id}"),
            NO_BODY,
            Auth::Bearer,
            Retry::Idempotent,
        )
        .await
    }

    // ---- Devices and public keys --------------------------------------------

    /// `PUT /api/v1/devices/{device_id}`: upload or replace a device bundle.
    pub async fn put_device(&self, body: &PutDeviceRequest) -> Result<Device> {
        let id = body.bundle.device_id;
        self.call(
            Method::PUT,
            &format!("/api/v1/devices/{id}"),
            Some(body),
            Auth::Bearer,
            Retry::Idempotent,
        )
        .await
    }

    /// `GET /api/v1/devices`: the caller's devices.
    pub async fn list_devices(&self, include_revoked: bool) -> Result<Page<Device>> {
        let q = DeviceListQuery {
            include_revoked: Some(include_revoked),
        };
        self.get_query("/api/v1/devices", &q, Auth::Bearer).await
    }

    /// `DELETE /api/v1/devices/{device_id}`: revoke one of the caller's devices
    /// (the relay asks for the account's password; the sessions that
    /// registered the device end).
    pub async fn revoke_device(&self, device_id: Uuid, current_password: &str) -> Result<()> {
        let body = RevokeDeviceRequest {
            current_password: current_password.to_string(),
        };
        self.call_empty(
            Method::DELETE,
            &format!("/api/v1/devices/{device_id}"),
            Some(&body),
            Auth::Bearer,
            Retry::Idempotent,
        )
        .await
    }

    /// `GET /api/v1/users/{id}/devices`.
    pub async fn user_devices(&self, user_id: Uuid, include_revoked: bool) -> Result<Page<Device>> {
        let q = DeviceListQuery {
            include_revoked: Some(include_revoked),
        };
        self.get_query(
            &format!("/api/v1/users/{user_id}/devices"),
            &q,
            Auth::Bearer,
        )
        .await
    }

    /// `POST /api/v1/keys/query`: the bundles of all devices of these users.
    pub async fn query_keys(
        &self,
        user_ids: &[Uuid],
        include_revoked: bool,
    ) -> Result<KeysQueryResponse> {
        let body = KeysQueryRequest {
            user_ids: user_ids.to_vec(),
            include_revoked,
        };
        // A query, though POSTed: safe to repeat.
        self.call(
            Method::POST,
            "/api/v1/keys/query",
            Some(&body),
            Auth::Bearer,
            Retry::Idempotent,
        )
        .await
    }

    // ---- Rooms and membership ----------------------------------------------

    /// `POST /api/v1/rooms`: a group room owned by the caller.
    pub async fn create_room(&self, name: &str, member_ids: &[Uuid]) -> Result<RoomDetails> {
        let body = CreateRoomRequest {
            name: name.into(),
            member_ids: Some(member_ids.to_vec()),
        };
        self.call(
            Method::POST,
            "/api/v1/rooms",
            Some(&body),
            Auth::Bearer,
            Retry::Once,
        )
        .await
    }

    /// `POST /api/v1/rooms/direct`: the direct room with `user_id` (existing or new).
    pub async fn direct_room(&self, user_id: Uuid) -> Result<RoomDetails> {
        let body = DirectRoomRequest { user_id };
        self.call(
            Method::POST,
            "/api/v1/rooms/direct",
            Some(&body),
            Auth::Bearer,
            Retry::Idempotent,
        )
        .await
    }

    /// `GET /api/v1/rooms`: one page of the caller's rooms, with unread counts.
    pub async fn list_rooms(&self, query: &PageQuery) -> Result<Page<Room>> {
        self.get_query("/api/v1/rooms", query, Auth::Bearer).await
    }

    /// Every room of the caller (all pages of `GET /api/v1/rooms`).
    pub async fn all_rooms(&self) -> Result<Vec<Room>> {
        let mut out = Vec::new();
        let mut cursor = None;
        loop {
            let page = self
                .list_rooms(&PageQuery {
                    limit: Some(sotto_core::api::MAX_LIMIT),
                    cursor,
                })
                .await?;
            out.extend(page.items);
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => return Ok(out),
            }
        }
    }

    /// `GET /api/v1/rooms/{id}`: details and members.
    pub async fn get_room(&self, id: Uuid) -> Result<RoomDetails> {
        self.call(
            Method::GET,
            &format!("/api/v1/rooms/{id}"),
            NO_BODY,
            Auth::Bearer,
            Retry::Idempotent,
        )
        .await
    }

    /// `PATCH /api/v1/rooms/{id}` (owner): rename.
    pub async fn rename_room(&self, id: Uuid, name: &str) -> Result<RoomDetails> {
        let body = PatchRoomRequest { name: name.into() };
        self.call(
            Method::PATCH,
            &format!("/api/v1/rooms/{id}"),
            Some(&body),
            Auth::Bearer,
            Retry::Idempotent,
        )
        .await
    }

    /// `DELETE /api/v1/rooms/{id}` (owner).
    pub async fn delete_room(&self, id: Uuid) -> Result<()> {
        self.call_empty(
            Method::DELETE,
            &format!("/api/v1/rooms/{id}"),
            NO_BODY,
            Auth::Bearer,
            Retry::Idempotent,
        )
        .await
    }

    /// `POST /api/v1/rooms/{id}/members` (owner): the new member, or the pending
    /// invitee when the user does not have the owner in their contacts.
    pub async fn add_member(&self, room: Uuid, user_id: Uuid) -> Result<AddedMember> {
        let body = AddMemberRequest { user_id };
        self.call(
            Method::POST,
            &format!("/api/v1/rooms/{room}/members"),
            Some(&body),
            Auth::Bearer,
            Retry::Once,
        )
        .await
    }

    /// `DELETE /api/v1/rooms/{id}/members/{user_id}` (owner, or oneself to leave).
    pub async fn remove_member(&self, room: Uuid, user_id: Uuid) -> Result<()> {
        self.call_empty(
            Method::DELETE,
            &format!("/api/v1/rooms/{room}/members/{user_id}"),
            NO_BODY,
            Auth::Bearer,
            Retry::Idempotent,
        )
        .await
    }

    // ---- Invitations and blocks --------------------------------------------

    /// `GET /api/v1/invitations`: the caller's pending invitations (one page).
    pub async fn list_invitations(&self, query: &PageQuery) -> Result<Page<Invitation>> {
        self.get_query("/api/v1/invitations", query, Auth::Bearer)
            .await
    }

    /// Every pending invitation of the caller (all pages).
    pub async fn all_invitations(&self) -> Result<Vec<Invitation>> {
        let mut out = Vec::new();
        let mut cursor = None;
        loop {
            let page = self
                .list_invitations(&PageQuery {
                    limit: Some(200),
                    cursor: cursor.take(),
                })
                .await?;
            out.extend(page.items);
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => return Ok(out),
            }
        }
    }

    /// `POST /api/v1/invitations/{id}/accept`: join the room.
    pub async fn accept_invitation(&self, id: Uuid) -> Result<RoomDetails> {
        self.call(
            Method::POST,
            &format!("/api/v1/invitations/{id}/accept"),
            NO_BODY,
            Auth::Bearer,
            Retry::Once,
        )
        .await
    }

    /// `POST /api/v1/invitations/{id}/decline`.
    pub async fn decline_invitation(&self, id: Uuid) -> Result<()> {
        self.call_empty(
            Method::POST,
            &format!("/api/v1/invitations/{id}/decline"),
            NO_BODY,
            Auth::Bearer,
            Retry::Once,
        )
        .await
    }

    /// `GET /api/v1/blocks`: the users the caller blocked (one page).
    pub async fn list_blocks(&self, query: &PageQuery) -> Result<Page<BlockedUser>> {
        self.get_query("/api/v1/blocks", query, Auth::Bearer).await
    }

    /// `POST /api/v1/blocks`: block a user.
    pub async fn block_user(&self, user_id: Uuid) -> Result<BlockedUser> {
        self.call(
            Method::POST,
            "/api/v1/blocks",
            Some(&BlockRequest { user_id }),
            Auth::Bearer,
            Retry::Idempotent,
        )
        .await
    }

    /// `DELETE /api/v1/blocks/{user_id}`: lift a block.
    pub async fn unblock_user(&self, user_id: Uuid) -> Result<()> {
        self.call_empty(
            Method::DELETE,
            &format!("/api/v1/blocks/{user_id}"),
            NO_BODY,
            Auth::Bearer,
            Retry::Idempotent,
        )
        .await
    }

    // ---- Messages ----------------------------------------------------------

    /// `POST /api/v1/rooms/{id}/messages`. Retried on failure: the relay stores a
    /// `client_id` once and answers a retry with the first result.
    pub async fn post_message(
        &self,
        room: Uuid,
        client_id: Uuid,
        envelope: Vec<u8>,
    ) -> Result<PostMessageResponse> {
        let body = PostMessageRequest {
            client_id,
            envelope: B64(envelope),
        };
        self.call(
            Method::POST,
            &format!("/api/v1/rooms/{room}/messages"),
            Some(&body),
            Auth::Bearer,
            Retry::Idempotent,
        )
        .await
    }

    /// `GET /api/v1/rooms/{id}/messages?after_seq=&limit=`.
    pub async fn list_messages(
        &self,
        room: Uuid,
        query: &MessageListQuery,
    ) -> Result<Page<Message>> {
        self.get_query(
            &format!("/api/v1/rooms/{room}/messages"),
            query,
            Auth::Bearer,
        )
        .await
    }

    /// `DELETE /api/v1/rooms/{id}/messages/{msg_id}` (sender or owner).
    pub async fn delete_message(&self, room: Uuid, id: Uuid) -> Result<()> {
        self.call_empty(
            Method::DELETE,
            &format!("/api/v1/rooms/{room}/messages/{id}"),
            NO_BODY,
            Auth::Bearer,
            Retry::Idempotent,
        )
        .await
    }

    /// `POST /api/v1/rooms/{id}/receipts`.
    pub async fn post_receipt(&self, room: Uuid, kind: ReceiptKind, seq: u64) -> Result<Receipt> {
        let body = ReceiptRequest { kind, seq };
        // A receipt only moves forward: repeating it is harmless.
        self.call(
            Method::POST,
            &format!("/api/v1/rooms/{room}/receipts"),
            Some(&body),
            Auth::Bearer,
            Retry::Idempotent,
        )
        .await
    }

    /// `GET /api/v1/unread`: unread counts per room.
    pub async fn unread(&self) -> Result<BTreeMap<Uuid, u64>> {
        let r: UnreadResponse = self
            .call(
                Method::GET,
                "/api/v1/unread",
                NO_BODY,
                Auth::Bearer,
                Retry::Idempotent,
            )
            .await?;
        Ok(r.0)
    }

    /// `POST /api/v1/rooms/{id}/attachments`: uploads an (already encrypted)
    /// blob of `len` bytes, streamed from `body`.
    pub async fn upload_attachment(
        &self,
        room: Uuid,
        len: u64,
        body: reqwest::Body,
    ) -> Result<Uuid> {
        let token = self.access_token().await?;
        let res = self
            .http()
            .post(format!(
                "{}/api/v1/rooms/{room}/attachments",
                self.base_url()
            ))
            .bearer_auth(token.as_str())
            .header(header::CONTENT_TYPE, "application/octet-stream")
            .header(header::CONTENT_LENGTH, len)
            .timeout(self.options().request_timeout + std::time::Duration::from_secs(len / 65536))
            .body(body)
            .send()
            .await
            .map_err(|e| Error::Network(e.to_string()))?;
        if !res.status().is_success() {
            return Err(problem_of(res, None).await);
        }
        let created: AttachmentCreated = decode(res).await?;
        Ok(created.id)
    }

    /// `GET /api/v1/attachments/{id}`: the blob's answer, to be streamed (no
    /// overall time limit: read it with a limit per chunk).
    pub async fn download_attachment(&self, id: Uuid) -> Result<reqwest::Response> {
        self.send(
            Method::GET,
            &format!("/api/v1/attachments/{id}"),
            None::<&()>,
            None,
            Auth::Bearer,
            Retry::Idempotent,
            Some(std::time::Duration::from_secs(24 * 3600)),
        )
        .await
    }

    // ---- Contacts ----------------------------------------------------------

    /// `GET /api/v1/contacts`.
    pub async fn list_contacts(&self, query: &PageQuery) -> Result<Page<Contact>> {
        self.get_query("/api/v1/contacts", query, Auth::Bearer)
            .await
    }

    /// `POST /api/v1/contacts`.
    pub async fn add_contact(&self, user_id: Uuid, nickname: Option<&str>) -> Result<Contact> {
        let body = AddContactRequest {
            user_id,
            nickname: nickname.map(Into::into),
        };
        self.call(
            Method::POST,
            "/api/v1/contacts",
            Some(&body),
            Auth::Bearer,
            Retry::Once,
        )
        .await
    }

    /// `PATCH /api/v1/contacts/{id}`.
    pub async fn rename_contact(&self, id: Uuid, nickname: Option<&str>) -> Result<Contact> {
        let body = PatchContactRequest {
            nickname: nickname.map(Into::into),
        };
        self.call(
            Method::PATCH,
            &format!("/api/v1/contacts/{id}"),
            Some(&body),
            Auth::Bearer,
            Retry::Idempotent,
        )
        .await
    }

    /// `DELETE /api/v1/contacts/{id}`.
    pub async fn delete_contact(&self, id: Uuid) -> Result<()> {
        self.call_empty(
            Method::DELETE,
            &format!("/api/v1/contacts/{id}"),
            NO_BODY,
            Auth::Bearer,
            Retry::Idempotent,
        )
        .await
    }

    // ---- Push --------------------------------------------------------------

    /// `GET /api/v1/push/vapid-public-key`.
    pub async fn vapid_public_key(&self) -> Result<VapidPublicKey> {
        self.call(
            Method::GET,
            "/api/v1/push/vapid-public-key",
            NO_BODY,
            Auth::Public,
            Retry::Idempotent,
        )
        .await
    }

    /// `POST /api/v1/push/subscriptions`.
    pub async fn subscribe_push(&self, body: &PushSubscriptionRequest) -> Result<()> {
        self.call_empty(
            Method::POST,
            "/api/v1/push/subscriptions",
            Some(body),
            Auth::Bearer,
            Retry::Idempotent,
        )
        .await
    }

    /// `DELETE /api/v1/push/subscriptions`.
    pub async fn unsubscribe_push(&self, body: &DeletePushSubscriptionRequest) -> Result<()> {
        self.call_empty(
            Method::DELETE,
            "/api/v1/push/subscriptions",
            Some(body),
            Auth::Bearer,
            Retry::Idempotent,
        )
        .await
    }

    /// `POST /api/v1/push/test`.
    pub async fn test_push(&self) -> Result<PushTestResponse> {
        self.call(
            Method::POST,
            "/api/v1/push/test",
            NO_BODY,
            Auth::Bearer,
            Retry::Once,
        )
        .await
    }

    // ---- Operations --------------------------------------------------------

    /// `GET /health`.
    pub async fn health(&self) -> Result<Health> {
        self.call(
            Method::GET,
            "/health",
            NO_BODY,
            Auth::Public,
            Retry::Idempotent,
        )
        .await
    }

    /// `GET /`: the relay's name and version.
    pub async fn info(&self) -> Result<RootInfo> {
        self.call(Method::GET, "/", NO_BODY, Auth::Public, Retry::Idempotent)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::token_from_link;

    #[test]
    fn tokens_come_out_of_links() {
        assert_eq!(token_from_link("http://r/verify-email#token=abc"), "abc");
        assert_eq!(token_from_link(" http://r/x?token=abc&y=1 "), "abc");
        assert_eq!(token_from_link("abc"), "abc");
    }
}
