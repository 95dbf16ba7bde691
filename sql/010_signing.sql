-- 010: signed images, their update manifests and encrypted forms.
--
-- An image is 'signed' once its detached CMS signature and its signed
-- manifest are stored, and, when it is encrypted, once every variant 1
-- chunk (its encrypted form, man/quarklink-image.5) is written and the
-- content key is stored wrapped by a token key. The content key is never
-- stored in clear. Signing runs as a job that holds a lease on the row
-- (sign_claim, sign_lease_until), renewed with every chunk it writes: a
-- node that dies mid-way leaves the image 'uploaded', and once the lease
-- has run out it can be signed again (the job starts by removing any
-- variant 1 chunks an earlier attempt left).

ALTER TABLE images
    ADD COLUMN signature_der    bytea,
    ADD COLUMN manifest_der     bytea,
    ADD COLUMN signed_by        text,
    ADD COLUMN signed_at        timestamptz,
    ADD COLUMN expires_at       timestamptz,
    -- length of the encrypted form (variant 1 chunks), header included
    ADD COLUMN enc_size         bigint CHECK (enc_size > 0),
    ADD COLUMN enc_segment_size integer CHECK (enc_segment_size > 0),
    -- the 7-byte random nonce prefix of the STREAM construction
    ADD COLUMN enc_nonce_prefix bytea CHECK (length(enc_nonce_prefix) = 7),
    -- the 32-byte content key, AES-256-GCM encrypted on the token with the
    -- key named by enc_kek_label: 12-byte IV || 32-byte ciphertext ||
    -- 16-byte tag, associated data "quarklink image key 1 " and the image id
    -- in decimal (man/quarklink-image.5)
    ADD COLUMN enc_key_wrapped  bytea CHECK (length(enc_key_wrapped) = 60),
    ADD COLUMN enc_kek_label    text,
    ADD COLUMN sign_claim       text,
    ADD COLUMN sign_lease_until timestamptz,
    ADD CONSTRAINT images_signed_complete CHECK (status <> 'signed' OR (
        signature_der IS NOT NULL AND manifest_der IS NOT NULL AND
        signed_by IS NOT NULL AND signed_at IS NOT NULL AND
        expires_at IS NOT NULL AND
        (NOT encrypt OR (enc_size IS NOT NULL AND
            enc_segment_size IS NOT NULL AND enc_nonce_prefix IS NOT NULL AND
            enc_key_wrapped IS NOT NULL AND enc_kek_label IS NOT NULL))));

-- Secret (symmetric) keys on the token, one per purpose, created by the
-- first node that needs one. 'image-kek' wraps image content keys.
CREATE TABLE token_secrets (
    purpose     text PRIMARY KEY CHECK (purpose IN ('image-kek')),
    key_label   text NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now()
);
