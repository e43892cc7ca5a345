-- Web Push subscriptions (api.md "Push"): a browser PushSubscription tied to one
-- device of its user. The endpoint is the push service's URL for that browser,
-- unique across the relay (re-subscribing it replaces the row).
CREATE TABLE push_subscriptions (
    endpoint        TEXT PRIMARY KEY NOT NULL,
    user_id         UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    device_id       UUID NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    p256dh          TEXT NOT NULL,                 -- base64url, the user agent's P-256 key
    auth            TEXT NOT NULL,                 -- base64url, 16-byte auth secret
    created_at      TIMESTAMPTZ NOT NULL
);
CREATE INDEX push_subscriptions_user ON push_subscriptions (user_id);
