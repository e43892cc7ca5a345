-- The relay on the hostile internet (docs/relay.md "Consent: invitations and
-- blocks", docs/config.md "Limits and quotas"): blocks, pending invitations,
-- message quota counters, the sessions that registered each device, and the
-- circuit of each push subscription.

-- A user (blocker) blocked another (blocked). Between the two there are no
-- invitations, no direct room, no posts into an existing one, and neither sees
-- the other's presence or typing.
CREATE TABLE blocks (
    blocker_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    blocked_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (blocker_id, blocked_id)
);
CREATE INDEX blocks_blocked ON blocks (blocked_id);

-- A pending invitation to a room: the invitee is not a member (no events, no
-- keys) until they accept; their history then starts at acceptance. Existing
-- memberships count as accepted.
CREATE TABLE invitations (
    id              TEXT PRIMARY KEY NOT NULL,
    room_id         TEXT NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    invitee_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    inviter_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at      BIGINT NOT NULL,
    UNIQUE (room_id, invitee_id)
);
CREATE INDEX invitations_invitee ON invitations (invitee_id);
CREATE INDEX invitations_inviter ON invitations (inviter_id);

-- Message quota counters per user (quotas.rs): envelope bytes stored, and bytes
-- posted on UTC day `day` (days since the epoch). Written every few seconds
-- from each relay's in-memory counts.
CREATE TABLE user_usage (
    user_id         TEXT PRIMARY KEY NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    stored_bytes    BIGINT NOT NULL,
    day             BIGINT NOT NULL,
    day_bytes       BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
INSERT INTO user_usage (user_id, stored_bytes, day, day_bytes, updated_at)
    SELECT m.sender_id, SUM(length(m.envelope)), 0, 0, 0
    FROM messages m JOIN users u ON u.id = m.sender_id
    WHERE m.envelope IS NOT NULL
    GROUP BY m.sender_id;

-- The sessions that uploaded each device's bundle: revoking the device ends them.
CREATE TABLE device_sessions (
    device_id       TEXT NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    session_id      TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    PRIMARY KEY (device_id, session_id)
);
CREATE INDEX device_sessions_session ON device_sessions (session_id);

-- Each push subscription's circuit: failed pushes in a row, and the last one.
ALTER TABLE push_subscriptions ADD COLUMN failures BIGINT NOT NULL DEFAULT 0;
ALTER TABLE push_subscriptions ADD COLUMN failed_at BIGINT;
CREATE INDEX push_subscriptions_device ON push_subscriptions (device_id);

-- The housekeeping sweeps (housekeeping.rs) look rows up by these.
CREATE INDEX refresh_tokens_expires ON refresh_tokens (expires_at);
CREATE INDEX email_tokens_expires ON email_tokens (expires_at);
CREATE INDEX audit_log_at ON audit_log (at);
