-- Devices and public keys, rooms and membership, messages, receipts, contacts and
-- attachments. Times are milliseconds since the Unix epoch (BIGINT); ids are UUID
-- strings; binary columns are BLOB (BYTEA in the PostgreSQL variant).
-- The relay stores public keys and opaque ciphertext only.

-- The identity key (Ed25519, base64url) each user's device bundles are signed by.
CREATE TABLE identities (
    user_id         TEXT PRIMARY KEY NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    identity_key    TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);

-- One row per registered device: its signed public bundle (JSON, verified on upload).
-- A revoked device keeps its row (`revoked_at`), so that old messages stay
-- verifiable and its id is never reused.
CREATE TABLE devices (
    id              TEXT PRIMARY KEY NOT NULL,     -- chosen by the client (bundle.device_id)
    user_id         TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    display_name    TEXT,
    identity_key    TEXT NOT NULL,
    bundle          TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    revoked_at      BIGINT
);
CREATE INDEX devices_user ON devices (user_id);

CREATE TABLE rooms (
    id              TEXT PRIMARY KEY NOT NULL,     -- UUIDv7
    kind            TEXT NOT NULL CHECK (kind IN ('group', 'direct')),
    name            TEXT NOT NULL,
    owner_id        TEXT NOT NULL,
    direct_key      TEXT UNIQUE,                   -- "<lower user id>:<higher user id>" for direct rooms
    last_seq        BIGINT NOT NULL DEFAULT 0,     -- seq of the latest message (gapless counter)
    member_epoch    BIGINT NOT NULL DEFAULT 0,     -- bumped by every membership change; posts re-check it
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);

-- Membership, with the member's receipts. `joined_seq` is the room's last_seq when
-- the member joined: history before it is not served to them.
CREATE TABLE room_members (
    room_id         TEXT NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    user_id         TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    joined_at       BIGINT NOT NULL,
    joined_seq      BIGINT NOT NULL,
    delivered_seq   BIGINT NOT NULL,
    delivered_at    BIGINT NOT NULL,
    read_seq        BIGINT NOT NULL,
    read_at         BIGINT NOT NULL,
    PRIMARY KEY (room_id, user_id)
);
CREATE INDEX room_members_user ON room_members (user_id);

-- Sealed envelopes, stored untouched. A deleted message keeps its row (tombstone)
-- with a NULL envelope so that seq stays gapless.
CREATE TABLE messages (
    id              TEXT PRIMARY KEY NOT NULL,     -- UUIDv7
    room_id         TEXT NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    seq             BIGINT NOT NULL,
    sender_id       TEXT NOT NULL,
    device_id       TEXT NOT NULL,
    client_id       TEXT NOT NULL,
    envelope        BLOB,
    envelope_sha256 TEXT NOT NULL,                 -- to tell a retry from a different message
    created_at      BIGINT NOT NULL,
    deleted_at      BIGINT,
    UNIQUE (room_id, seq),
    UNIQUE (sender_id, client_id)
);

-- SQLite stores a message with one statement, `INSERT ... SELECT last_seq + 1`,
-- under its single write lock; this moves the room's counter in the same statement.
-- (PostgreSQL takes the next seq with `UPDATE ... RETURNING` in the statement itself.)
CREATE TRIGGER messages_take_seq AFTER INSERT ON messages
BEGIN
    UPDATE rooms SET last_seq = NEW.seq WHERE id = NEW.room_id;
END;

CREATE TABLE contacts (
    id              TEXT PRIMARY KEY NOT NULL,
    owner_id        TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    contact_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    nickname        TEXT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    UNIQUE (owner_id, contact_id)
);
CREATE INDEX contacts_contact ON contacts (contact_id);

-- Opaque encrypted attachments: small ones inline (`data`), larger ones as a file
-- `<data dir>/attachments/<id>` (`data` NULL).
CREATE TABLE attachments (
    id              TEXT PRIMARY KEY NOT NULL,
    room_id         TEXT NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    uploader_id     TEXT NOT NULL,
    size            BIGINT NOT NULL,
    data            BLOB,
    created_at      BIGINT NOT NULL
);
CREATE INDEX attachments_room ON attachments (room_id);
