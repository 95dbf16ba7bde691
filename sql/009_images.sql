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

-- "1.2" -> {1,2,0,0}: the caller has checked the text against the
-- uploads.version pattern (1-4 parts of at most 9 digits fit an integer).
CREATE FUNCTION ql_version_key(p_version text) RETURNS integer[]
LANGUAGE sql IMMUTABLE AS $$
    SELECT ARRAY(SELECT coalesce((string_to_array(p_version, '.'))[i]::integer, 0)
                 FROM generate_series(1, 4) i)
$$;

-- Is there an image of that name whose version is not older? Versions are
-- monotonic per project and name: a new one must be newer than all.
CREATE FUNCTION ql_image_version_taken(p_project bigint, p_name text,
        p_key integer[]) RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT EXISTS (SELECT 1 FROM images
                   WHERE project_id = p_project AND name = p_name
                     AND version_key >= p_key)
$$;

-- tus creation. 'ok', or 'not_newer' when an image of that name already
-- has this version or a newer one (checked again at completion: uploads
-- race).
CREATE FUNCTION ql_upload_create(p_id text, p_project bigint, p_name text,
        p_version text, p_length bigint, p_sha256 bytea, p_hardware text[],
        p_encrypt boolean, p_filename text, p_actor text, p_expiry_s integer)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    k integer[] := ql_version_key(p_version);
BEGIN
    IF ql_image_version_taken(p_project, p_name, k) THEN
        RETURN 'not_newer';
    END IF;
    INSERT INTO uploads (id, project_id, image_name, version, version_key,
            upload_length, sha256_expected, hardware, encrypt, filename,
            created_by, expires_at)
        VALUES (p_id, p_project, p_name, p_version, k, p_length, p_sha256,
            p_hardware, p_encrypt, p_filename, p_actor,
            now() + make_interval(secs => p_expiry_s));
    PERFORM ql_audit(p_actor, 'upload.create', p_id, 'ok',
        p_name || ' ' || p_version || ', ' || p_length || ' bytes', p_project);
    RETURN 'ok';
END $$;

-- The upload as HEAD and PATCH see it. An expired upload is gone for
-- every request even before the expiry job has removed its chunks.
CREATE FUNCTION ql_upload_get(p_id text)
RETURNS TABLE (project_id bigint, upload_length bigint, upload_offset bigint,
        sha256_state bytea, image_id bigint) LANGUAGE sql STABLE AS $$
    SELECT u.project_id, u.upload_length, u.upload_offset, u.sha256_state, i.id
    FROM uploads u LEFT JOIN images i ON i.upload_id = u.id
    WHERE u.id = p_id AND (u.completed_at IS NOT NULL OR u.expires_at > now())
$$;

-- One tus PATCH in one transaction: the bytes as rows of at most 1 MiB
-- from p_offset on, the new offset and SHA-256 state; at the last byte,
-- the image row. Nothing is written unless every check passes.
-- result: 'ok' (image_id set when this completed the upload), 'not_found',
-- 'completed', 'conflict' (upload_offset: the stored one), 'too_long',
-- 'sha256_mismatch', 'not_newer'.
CREATE FUNCTION ql_upload_patch(p_id text, p_project bigint, p_offset bigint,
        p_data bytea, p_state bytea, p_sha256 bytea, p_expiry_s integer,
        p_actor text)
RETURNS TABLE (result text, upload_offset bigint, image_id bigint)
LANGUAGE plpgsql AS $$
DECLARE
    u uploads%ROWTYPE;
    n bigint := length(p_data);
    new_off bigint;
    iid bigint;
BEGIN
    SELECT * INTO u FROM uploads
        WHERE id = p_id AND project_id = p_project FOR UPDATE;
    IF NOT FOUND OR (u.completed_at IS NULL AND u.expires_at <= now()) THEN
        RETURN QUERY SELECT 'not_found'::text, NULL::bigint, NULL::bigint;
        RETURN;
    END IF;
    IF u.completed_at IS NOT NULL THEN
        RETURN QUERY SELECT 'completed'::text, u.upload_offset, NULL::bigint;
        RETURN;
    END IF;
    IF u.upload_offset <> p_offset THEN
        RETURN QUERY SELECT 'conflict'::text, u.upload_offset, NULL::bigint;
        RETURN;
    END IF;
    new_off := p_offset + n;
    IF new_off > u.upload_length THEN
        RETURN QUERY SELECT 'too_long'::text, u.upload_offset, NULL::bigint;
        RETURN;
    END IF;
    IF new_off = u.upload_length THEN
        IF p_sha256 IS NULL OR (u.sha256_expected IS NOT NULL AND
                u.sha256_expected <> p_sha256) THEN
            RETURN QUERY SELECT 'sha256_mismatch'::text, u.upload_offset,
                NULL::bigint;
            RETURN;
        END IF;
        -- Two uploads of one name completing at once: one at a time, so
        -- the second sees the first's version.
        PERFORM pg_advisory_xact_lock(hashtextextended(
            'ql_image:' || u.project_id || ':' || u.image_name, 0));
        IF ql_image_version_taken(u.project_id, u.image_name, u.version_key) THEN
            RETURN QUERY SELECT 'not_newer'::text, u.upload_offset, NULL::bigint;
            RETURN;
        END IF;
    END IF;
    IF n > 0 THEN
        INSERT INTO image_chunks (upload_id, variant, off, data)
            SELECT p_id, 0, p_offset + g * 1048576,
                   substring(p_data FROM (g * 1048576 + 1)::integer FOR 1048576)
            FROM generate_series(0, (n - 1) / 1048576) g;
    END IF;
    IF new_off < u.upload_length THEN
        UPDATE uploads SET upload_offset = new_off, sha256_state = p_state,
                expires_at = now() + make_interval(secs => p_expiry_s)
            WHERE id = p_id;
        RETURN QUERY SELECT 'ok'::text, new_off, NULL::bigint;
        RETURN;
    END IF;
    UPDATE uploads SET upload_offset = new_off, sha256_state = NULL,
            completed_at = now()
        WHERE id = p_id;
    INSERT INTO images (project_id, name, version, version_key, upload_id,
            size, sha256, hardware, encrypt, uploaded_by)
        VALUES (u.project_id, u.image_name, u.version, u.version_key, p_id,
            u.upload_length, p_sha256, u.hardware, u.encrypt, u.created_by)
        RETURNING id INTO iid;
    PERFORM ql_audit(p_actor, 'image.upload', iid::text, 'ok',
        u.image_name || ' ' || u.version || ', ' || u.upload_length ||
        ' bytes, sha256 ' || encode(p_sha256, 'hex'), u.project_id);
    RETURN QUERY SELECT 'ok'::text, new_off, iid;
END $$;

-- tus termination: the upload and (soon, in batches) its chunks. 'ok',
-- 'not_found', or
-- 'completed' (an image now: delete it through the images API).
CREATE FUNCTION ql_upload_delete(p_id text, p_project bigint, p_actor text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    u uploads%ROWTYPE;
BEGIN
    SELECT * INTO u FROM uploads
        WHERE id = p_id AND project_id = p_project FOR UPDATE;
    IF NOT FOUND OR (u.completed_at IS NULL AND u.expires_at <= now()) THEN
        RETURN 'not_found';
    END IF;
    IF u.completed_at IS NOT NULL THEN
        RETURN 'completed';
    END IF;
    -- The bytes go in bounded batches (ql_upload_expire): an expired
    -- upload is gone for every request already.
    UPDATE uploads SET expires_at = '-infinity' WHERE id = p_id;
    PERFORM ql_audit(p_actor, 'upload.delete', p_id, 'ok',
        u.image_name || ' ' || u.version || ' at ' || u.upload_offset || ' of ' ||
        u.upload_length || ' bytes', p_project);
    RETURN 'ok';
END $$;

-- Expired incomplete uploads, in bounded batches: at most p_rows chunk
-- rows per call (and then the uploads left without chunks). Returns the
-- rows deleted; the caller calls again at once while that is p_rows.
CREATE FUNCTION ql_upload_expire(p_rows integer) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    n integer := 0;
    m integer;
    u uploads%ROWTYPE;
BEGIN
    FOR u IN SELECT * FROM uploads
            WHERE completed_at IS NULL AND expires_at <= now()
            ORDER BY expires_at LIMIT 16 FOR UPDATE SKIP LOCKED LOOP
        DELETE FROM image_chunks WHERE ctid = ANY (ARRAY(
            SELECT ctid FROM image_chunks WHERE upload_id = u.id
            LIMIT p_rows - n));
        GET DIAGNOSTICS m = ROW_COUNT;
        n := n + m;
        IF n >= p_rows THEN
            RETURN n;
        END IF;
        DELETE FROM uploads WHERE id = u.id;
        PERFORM ql_audit('quarklinkd', 'upload.expire', u.id, 'ok',
            u.image_name || ' ' || u.version || ' at ' || u.upload_offset ||
            ' of ' || u.upload_length || ' bytes', u.project_id);
        n := n + 1;
        IF n >= p_rows THEN
            RETURN n;
        END IF;
    END LOOP;
    RETURN n;
END $$;

-- An image of the project as the API shows it.
CREATE VIEW ql_images_api AS
SELECT i.id, i.project_id, i.name, i.version, i.size,
    encode(i.sha256, 'hex') AS sha256, i.status,
    array_to_string(i.hardware, ',') AS hardware, i.encrypt, i.uploaded_by,
    to_char(i.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS created_at,
    i.upload_id
FROM images i;

-- Delete an image; its bytes follow in batches. 'ok' or 'not_found'. The deployments
-- migration (011) replaces this function to answer 'deployed' for an
-- image a deployment refers to: keep the signature and the result words.
CREATE FUNCTION ql_image_delete(p_project bigint, p_image bigint, p_actor text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    i images%ROWTYPE;
BEGIN
    SELECT * INTO i FROM images
        WHERE project_id = p_project AND id = p_image FOR UPDATE;
    IF NOT FOUND THEN
        RETURN 'not_found';
    END IF;
    DELETE FROM images WHERE id = i.id;
    -- Its bytes (GiB, maybe) go in bounded batches: ql_upload_expire
    -- takes the upload, invisible from now on, as an abandoned one.
    UPDATE uploads SET completed_at = NULL, expires_at = '-infinity'
        WHERE id = i.upload_id;
    PERFORM ql_audit(p_actor, 'image.delete', i.id::text, 'ok',
        i.name || ' ' || i.version, p_project);
    RETURN 'ok';
END $$;
