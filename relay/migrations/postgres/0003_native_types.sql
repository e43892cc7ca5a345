-- The schema on PostgreSQL's own types, converted in place (nothing is lost):
-- ids become UUID, times TIMESTAMPTZ (from milliseconds since the Unix epoch,
-- exactly), the e-mail flag BOOLEAN. Foreign keys are dropped for the change
-- and made again as they were.
--
-- From here on migrations are append-only: a released relay's database is
-- upgraded by the migrations after it (tests/tests/relay/upgrade.rs keeps a
-- database made by the earlier set and checks that nothing is lost).

ALTER TABLE sessions DROP CONSTRAINT sessions_user_id_fkey;
ALTER TABLE refresh_tokens DROP CONSTRAINT refresh_tokens_session_id_fkey;
ALTER TABLE email_tokens DROP CONSTRAINT email_tokens_user_id_fkey;
ALTER TABLE identities DROP CONSTRAINT identities_user_id_fkey;
ALTER TABLE devices DROP CONSTRAINT devices_user_id_fkey;
ALTER TABLE room_members DROP CONSTRAINT room_members_room_id_fkey;
ALTER TABLE room_members DROP CONSTRAINT room_members_user_id_fkey;
ALTER TABLE messages DROP CONSTRAINT messages_room_id_fkey;
ALTER TABLE contacts DROP CONSTRAINT contacts_owner_id_fkey;
ALTER TABLE contacts DROP CONSTRAINT contacts_contact_id_fkey;
ALTER TABLE attachments DROP CONSTRAINT attachments_room_id_fkey;

ALTER TABLE users ALTER COLUMN email_verified DROP DEFAULT;
ALTER TABLE users
    ALTER COLUMN id TYPE UUID USING id::uuid,
    ALTER COLUMN created_at TYPE TIMESTAMPTZ USING TIMESTAMPTZ 'epoch' + created_at * INTERVAL '1 millisecond',
    ALTER COLUMN updated_at TYPE TIMESTAMPTZ USING TIMESTAMPTZ 'epoch' + updated_at * INTERVAL '1 millisecond',
    ALTER COLUMN email_verified TYPE BOOLEAN USING email_verified <> 0;
ALTER TABLE sessions
    ALTER COLUMN id TYPE UUID USING id::uuid,
    ALTER COLUMN user_id TYPE UUID USING user_id::uuid,
    ALTER COLUMN created_at TYPE TIMESTAMPTZ USING TIMESTAMPTZ 'epoch' + created_at * INTERVAL '1 millisecond',
    ALTER COLUMN last_used_at TYPE TIMESTAMPTZ USING TIMESTAMPTZ 'epoch' + last_used_at * INTERVAL '1 millisecond',
    ALTER COLUMN revoked_at TYPE TIMESTAMPTZ USING TIMESTAMPTZ 'epoch' + revoked_at * INTERVAL '1 millisecond';
ALTER TABLE refresh_tokens
    ALTER COLUMN session_id TYPE UUID USING session_id::uuid,
    ALTER COLUMN created_at TYPE TIMESTAMPTZ USING TIMESTAMPTZ 'epoch' + created_at * INTERVAL '1 millisecond',
    ALTER COLUMN expires_at TYPE TIMESTAMPTZ USING TIMESTAMPTZ 'epoch' + expires_at * INTERVAL '1 millisecond',
    ALTER COLUMN used_at TYPE TIMESTAMPTZ USING TIMESTAMPTZ 'epoch' + used_at * INTERVAL '1 millisecond';
ALTER TABLE email_tokens
    ALTER COLUMN user_id TYPE UUID USING user_id::uuid,
    ALTER COLUMN created_at TYPE TIMESTAMPTZ USING TIMESTAMPTZ 'epoch' + created_at * INTERVAL '1 millisecond',
    ALTER COLUMN expires_at TYPE TIMESTAMPTZ USING TIMESTAMPTZ 'epoch' + expires_at * INTERVAL '1 millisecond',
    ALTER COLUMN used_at TYPE TIMESTAMPTZ USING TIMESTAMPTZ 'epoch' + used_at * INTERVAL '1 millisecond';
ALTER TABLE audit_log
    ALTER COLUMN id TYPE UUID USING id::uuid,
    ALTER COLUMN actor_id TYPE UUID USING actor_id::uuid,
    ALTER COLUMN target_id TYPE UUID USING target_id::uuid,
    ALTER COLUMN at TYPE TIMESTAMPTZ USING TIMESTAMPTZ 'epoch' + at * INTERVAL '1 millisecond';
ALTER TABLE identities
    ALTER COLUMN user_id TYPE UUID USING user_id::uuid,
    ALTER COLUMN created_at TYPE TIMESTAMPTZ USING TIMESTAMPTZ 'epoch' + created_at * INTERVAL '1 millisecond',
    ALTER COLUMN updated_at TYPE TIMESTAMPTZ USING TIMESTAMPTZ 'epoch' + updated_at * INTERVAL '1 millisecond';
ALTER TABLE devices
    ALTER COLUMN id TYPE UUID USING id::uuid,
    ALTER COLUMN user_id TYPE UUID USING user_id::uuid,
    ALTER COLUMN created_at TYPE TIMESTAMPTZ USING TIMESTAMPTZ 'epoch' + created_at * INTERVAL '1 millisecond',
    ALTER COLUMN updated_at TYPE TIMESTAMPTZ USING TIMESTAMPTZ 'epoch' + updated_at * INTERVAL '1 millisecond',
    ALTER COLUMN revoked_at TYPE TIMESTAMPTZ USING TIMESTAMPTZ 'epoch' + revoked_at * INTERVAL '1 millisecond';
ALTER TABLE rooms
    ALTER COLUMN id TYPE UUID USING id::uuid,
    ALTER COLUMN owner_id TYPE UUID USING owner_id::uuid,
    ALTER COLUMN created_at TYPE TIMESTAMPTZ USING TIMESTAMPTZ 'epoch' + created_at * INTERVAL '1 millisecond',
    ALTER COLUMN updated_at TYPE TIMESTAMPTZ USING TIMESTAMPTZ 'epoch' + updated_at * INTERVAL '1 millisecond';
ALTER TABLE room_members
    ALTER COLUMN room_id TYPE UUID USING room_id::uuid,
    ALTER COLUMN user_id TYPE UUID USING user_id::uuid,
    ALTER COLUMN joined_at TYPE TIMESTAMPTZ USING TIMESTAMPTZ 'epoch' + joined_at * INTERVAL '1 millisecond',
    ALTER COLUMN delivered_at TYPE TIMESTAMPTZ USING TIMESTAMPTZ 'epoch' + delivered_at * INTERVAL '1 millisecond',
    ALTER COLUMN read_at TYPE TIMESTAMPTZ USING TIMESTAMPTZ 'epoch' + read_at * INTERVAL '1 millisecond';
ALTER TABLE messages
    ALTER COLUMN id TYPE UUID USING id::uuid,
    ALTER COLUMN room_id TYPE UUID USING room_id::uuid,
    ALTER COLUMN sender_id TYPE UUID USING sender_id::uuid,
    ALTER COLUMN device_id TYPE UUID USING device_id::uuid,
    ALTER COLUMN client_id TYPE UUID USING client_id::uuid,
    ALTER COLUMN created_at TYPE TIMESTAMPTZ USING TIMESTAMPTZ 'epoch' + created_at * INTERVAL '1 millisecond',
    ALTER COLUMN deleted_at TYPE TIMESTAMPTZ USING TIMESTAMPTZ 'epoch' + deleted_at * INTERVAL '1 millisecond';
ALTER TABLE contacts
    ALTER COLUMN id TYPE UUID USING id::uuid,
    ALTER COLUMN owner_id TYPE UUID USING owner_id::uuid,
    ALTER COLUMN contact_id TYPE UUID USING contact_id::uuid,
    ALTER COLUMN created_at TYPE TIMESTAMPTZ USING TIMESTAMPTZ 'epoch' + created_at * INTERVAL '1 millisecond',
    ALTER COLUMN updated_at TYPE TIMESTAMPTZ USING TIMESTAMPTZ 'epoch' + updated_at * INTERVAL '1 millisecond';
ALTER TABLE attachments
    ALTER COLUMN id TYPE UUID USING id::uuid,
    ALTER COLUMN room_id TYPE UUID USING room_id::uuid,
    ALTER COLUMN uploader_id TYPE UUID USING uploader_id::uuid,
    ALTER COLUMN created_at TYPE TIMESTAMPTZ USING TIMESTAMPTZ 'epoch' + created_at * INTERVAL '1 millisecond';
ALTER TABLE users ALTER COLUMN email_verified SET DEFAULT FALSE;

ALTER TABLE sessions ADD CONSTRAINT sessions_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE;
ALTER TABLE refresh_tokens ADD CONSTRAINT refresh_tokens_session_id_fkey FOREIGN KEY (session_id) REFERENCES sessions (id) ON DELETE CASCADE;
ALTER TABLE email_tokens ADD CONSTRAINT email_tokens_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE;
ALTER TABLE identities ADD CONSTRAINT identities_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE;
ALTER TABLE devices ADD CONSTRAINT devices_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE;
ALTER TABLE room_members ADD CONSTRAINT room_members_room_id_fkey FOREIGN KEY (room_id) REFERENCES rooms (id) ON DELETE CASCADE;
ALTER TABLE room_members ADD CONSTRAINT room_members_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE;
ALTER TABLE messages ADD CONSTRAINT messages_room_id_fkey FOREIGN KEY (room_id) REFERENCES rooms (id) ON DELETE CASCADE;
ALTER TABLE contacts ADD CONSTRAINT contacts_owner_id_fkey FOREIGN KEY (owner_id) REFERENCES users (id) ON DELETE CASCADE;
ALTER TABLE contacts ADD CONSTRAINT contacts_contact_id_fkey FOREIGN KEY (contact_id) REFERENCES users (id) ON DELETE CASCADE;
ALTER TABLE attachments ADD CONSTRAINT attachments_room_id_fkey FOREIGN KEY (room_id) REFERENCES rooms (id) ON DELETE CASCADE;
