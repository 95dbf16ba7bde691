-- 007_audit.sql: API tokens carry no more than their creator's current
-- rights, and the audit log gets signed checkpoints (the chain head, like a
-- transparency log's signed tree head) so truncation and rewriting are seen.

-- Role order admin > operator > viewer, as a number to take the lesser.
CREATE FUNCTION ql_role_rank(p_role text) RETURNS integer
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE p_role WHEN 'admin' THEN 3 WHEN 'operator' THEN 2
                       WHEN 'viewer' THEN 1 ELSE 0 END
$$;

-- Who is calling. A token's rights are computed here, at every request:
-- the lesser of the token's role and its creator's current role, and the
-- intersection of the token's project and the creator's current projects
-- (NULL = every project). Demoting or restricting a user narrows the
-- tokens that user made at once; an empty intersection or a disabled
-- creator means the token no longer authenticates. A token with no
-- creator (inserted into the database by the installation's operator, as
-- the API never does) carries its own role and scope.
CREATE OR REPLACE FUNCTION ql_authenticate(p_kind text, p_hash bytea)
RETURNS TABLE (actor text, role text, projects bigint[], user_id bigint,
    token_id bigint)
LANGUAGE plpgsql AS $$
BEGIN
    IF p_kind = 'session' THEN
        RETURN QUERY SELECT 'user:' || u.name, u.role, u.projects, u.id,
                NULL::bigint
            FROM sessions s JOIN users u ON u.id = s.user_id
            WHERE s.id_hash = p_hash AND s.expires_at > now()
              AND u.disabled_at IS NULL;
    ELSE
        UPDATE api_tokens SET last_used = now()
            WHERE token_hash = p_hash AND revoked_at IS NULL
              AND (expires_at IS NULL OR expires_at > now())
              AND (last_used IS NULL OR last_used < now() - interval '1 minute');
        RETURN QUERY SELECT x.actor, x.role, x.projects, x.user_id, x.token_id
            FROM (SELECT 'token:' || t.id AS actor,
                    CASE WHEN u.id IS NOT NULL
                          AND ql_role_rank(u.role) < ql_role_rank(t.role)
                         THEN u.role ELSE t.role END AS role,
                    CASE WHEN t.project_id IS NULL THEN u.projects
                         WHEN u.id IS NULL OR u.projects IS NULL
                              OR t.project_id = ANY(u.projects)
                              THEN ARRAY[t.project_id]
                         ELSE '{}'::bigint[] END AS projects,
                    t.created_by AS user_id, t.id AS token_id
                FROM api_tokens t LEFT JOIN users u ON u.id = t.created_by
                WHERE t.token_hash = p_hash AND t.revoked_at IS NULL
                  AND (t.expires_at IS NULL OR t.expires_at > now())
                  AND (u.id IS NULL OR u.disabled_at IS NULL)) x
            WHERE x.projects IS NULL OR cardinality(x.projects) > 0;
    END IF;
END $$;

-- The installation's checkpoint key: generated on the token at first
-- start (sign only, never extractable); the public key is kept here so
-- anyone can verify a checkpoint. One row.
CREATE TABLE audit_checkpoint_key (
    one         boolean PRIMARY KEY DEFAULT true CHECK (one),
    key_label   text NOT NULL UNIQUE,
    public_key  bytea NOT NULL,		-- DER SubjectPublicKeyInfo
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- A checkpoint: the first "rows" rows of the log (in id order), the last
-- of them "last_id", end in "head"; signed at "at". signed_data is exactly
-- the signed bytes, ql_audit_checkpoint_text() of the other columns.
CREATE TABLE audit_checkpoints (
    id          bigserial PRIMARY KEY,
    rows        bigint NOT NULL CHECK (rows >= 0),
    last_id     bigint,
    head        bytea NOT NULL,
    at          timestamptz NOT NULL,
    signed_data text NOT NULL,
    signature   bytea NOT NULL
);

-- What is signed: four lines of ASCII, so that a verifier can rebuild it
-- from the JSON fields and check it with stock openssl.
CREATE FUNCTION ql_audit_checkpoint_text(p_rows bigint, p_last_id bigint,
        p_head bytea, p_at timestamptz)
RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT 'quarklink audit checkpoint v1' || chr(10) ||
        'rows ' || p_rows || chr(10) ||
        'last_id ' || coalesce(p_last_id::text, '-') || chr(10) ||
        'head ' || coalesce(nullif(encode(p_head, 'hex'), ''), '-') || chr(10) ||
        'time ' || to_char(p_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') || chr(10)
$$;

-- A checkpoint against the log as it is now: "forged" (its columns are not
-- what was signed), "short" (the log has fewer rows than it covered),
-- "differs" (its last row is gone or no longer ends in the signed head),
-- else "ok". The signature itself is checked by the daemon, which holds
-- the key; the database's copy of anything can be rewritten.
CREATE FUNCTION ql_audit_checkpoint_state(cp audit_checkpoints)
RETURNS text LANGUAGE sql STABLE AS $$
    SELECT CASE
        WHEN cp.signed_data IS DISTINCT FROM
             ql_audit_checkpoint_text(cp.rows, cp.last_id, cp.head, cp.at) THEN 'forged'
        WHEN (SELECT count(*) FROM audit_log) < cp.rows THEN 'short'
        WHEN cp.last_id IS NOT NULL AND (SELECT a.hash FROM audit_log a
             WHERE a.id = cp.last_id) IS DISTINCT FROM cp.head THEN 'differs'
        ELSE 'ok' END
$$;

-- The chain head now, read under the appenders' lock so no row is half-way
-- in, with the text to sign. Like a transparency log, a new checkpoint
-- must extend the latest one: prev_state (ql_audit_checkpoint_state, or
-- 'none') and prev_signed/prev_signature let the daemon refuse to sign a
-- log that was cut or rewritten. is_unchanged: the latest checkpoint
-- already says this (the periodic timer then signs nothing).
CREATE FUNCTION ql_audit_head(OUT rows bigint, OUT last_id bigint,
        OUT head bytea, OUT at timestamptz, OUT signed_data text,
        OUT is_unchanged boolean, OUT prev_id bigint, OUT prev_state text,
        OUT prev_signed text, OUT prev_signature text)
LANGUAGE plpgsql AS $$
DECLARE
    cp audit_checkpoints%ROWTYPE;
BEGIN
    PERFORM pg_advisory_xact_lock(7166210932);
    SELECT count(*) INTO rows FROM audit_log;
    SELECT a.id, a.hash INTO last_id, head FROM audit_log a ORDER BY a.id DESC LIMIT 1;
    head := coalesce(head, '\x'::bytea);
    at := date_trunc('second', clock_timestamp());
    signed_data := ql_audit_checkpoint_text(rows, last_id, head, at);
    SELECT * INTO cp FROM audit_checkpoints c ORDER BY c.id DESC LIMIT 1;
    IF NOT FOUND THEN
        is_unchanged := false;
        prev_state := 'none';
        RETURN;
    END IF;
    is_unchanged := cp.rows = rows AND cp.head = head;
    prev_id := cp.id;
    prev_state := ql_audit_checkpoint_state(cp);
    prev_signed := cp.signed_data;
    prev_signature := encode(cp.signature, 'hex');
END $$;

-- The chain (ql_audit_verify) and the latest checkpoint's state; the
-- caller checks the signature over cp_signed.
CREATE FUNCTION ql_audit_verify_checkpoint()
RETURNS TABLE (rows bigint, broken_id bigint, cp_id bigint, cp_rows bigint,
    cp_signed text, cp_signature text, cp_state text)
LANGUAGE sql STABLE AS $$
    SELECT v.rows, v.broken_id, (l.cp).id, (l.cp).rows, (l.cp).signed_data,
        encode((l.cp).signature, 'hex'),
        CASE WHEN (l.cp).id IS NULL THEN 'none'
             ELSE ql_audit_checkpoint_state(l.cp) END
    FROM ql_audit_verify() v
    LEFT JOIN LATERAL (SELECT c AS cp FROM audit_checkpoints c
        ORDER BY c.id DESC LIMIT 1) l ON true
$$;
