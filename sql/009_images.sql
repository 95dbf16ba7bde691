-- 009: images and their resumable uploads (tus 1.0).
--
-- An upload is a tus resource: its bytes arrive as PATCH requests and are
-- stored as they are accepted in image_chunks, one transaction per PATCH
-- that also moves upload_offset and the saved SHA-256 state. The image row
-- exists only once every byte is there and the length and SHA-256 match,
-- so nothing half-uploaded is ever listed. The bytes stay keyed by the
-- upload's id; the image refers to them.

CREATE TABLE uploads (
    id              text PRIMARY KEY CHECK (id ~ '^[a-z2-7]{26}$'),
    project_id      bigint NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    image_name      text NOT NULL CHECK (image_name ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'),
    version         text NOT NULL CHECK (version ~ '^[0-9]{1,9}(\.[0-9]{1,9}){0,3}$'),
    -- version as four integers, missing parts 0: "1.2" = {1,2,0,0}, so
    -- array comparison orders versions and 1.2 equals 1.2.0.
    version_key     integer[] NOT NULL CHECK (cardinality(version_key) = 4),
    upload_length   bigint NOT NULL CHECK (upload_length >= 0),
    upload_offset   bigint NOT NULL DEFAULT 0 CHECK (upload_offset BETWEEN 0 AND upload_length),
    -- OpenSSL's SHA-256 state after upload_offset bytes, so a restart
    -- resumes the hash without reading the chunks back.
    sha256_state    bytea,
    -- the SHA-256 the uploader announced (optional): completion checks it
    sha256_expected bytea CHECK (sha256_expected IS NULL OR length(sha256_expected) = 32),
    hardware        text[] NOT NULL DEFAULT '{}',
    encrypt         boolean NOT NULL DEFAULT false,
    filename        text CHECK (length(filename) <= 255),
    created_by      text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    completed_at    timestamptz,
    -- an incomplete upload not touched before this is removed with its chunks
    expires_at      timestamptz NOT NULL
);
CREATE INDEX uploads_expiry ON uploads (expires_at) WHERE completed_at IS NULL;

-- The bytes of an upload: contiguous, non-overlapping rows of at most
-- 1 MiB each, row (off, data) holding bytes [off, off + length(data)).
-- variant 0 is the image as uploaded; variant 1 its encrypted form.
-- A reader finds the row holding byte o with
--   WHERE upload_id = $1 AND variant = $2 AND off <= $3 ORDER BY off DESC LIMIT 1
CREATE TABLE image_chunks (
    upload_id   text NOT NULL REFERENCES uploads(id) ON DELETE CASCADE,
    variant     smallint NOT NULL DEFAULT 0 CHECK (variant IN (0, 1)),
    off         bigint NOT NULL CHECK (off >= 0),
    data        bytea NOT NULL CHECK (length(data) BETWEEN 1 AND 1048576),
    PRIMARY KEY (upload_id, variant, off)
);
-- Images are compressed already (or encrypted): do not try again.
ALTER TABLE image_chunks ALTER COLUMN data SET STORAGE EXTERNAL;

CREATE TABLE images (
    id              bigserial PRIMARY KEY,
    project_id      bigint NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    name            text NOT NULL,
    version         text NOT NULL,
    version_key     integer[] NOT NULL,
    upload_id       text NOT NULL UNIQUE REFERENCES uploads(id),
    size            bigint NOT NULL,
    sha256          bytea NOT NULL CHECK (length(sha256) = 32),
    status          text NOT NULL DEFAULT 'uploaded' CHECK (status IN ('uploaded', 'signed')),
    hardware        text[] NOT NULL DEFAULT '{}',
    encrypt         boolean NOT NULL DEFAULT false,
    uploaded_by     text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (project_id, name, version_key)
);
CREATE INDEX images_project ON images (project_id, name, version_key);
