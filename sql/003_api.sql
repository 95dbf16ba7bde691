-- 003_api.sql: users, sessions, API tokens, and what the admin API needs
-- on devices and tokens. Secrets are stored as SHA-256 of 256-bit random
-- values (sessions, tokens) or Argon2id (passwords).

CREATE TABLE users (
    id                  bigserial PRIMARY KEY,
    name                text NOT NULL UNIQUE CHECK (name ~ '^[A-Za-z0-9._@-]{1,64}$'),
    password_hash       text NOT NULL,
    role                text NOT NULL CHECK (role IN ('admin', 'operator', 'viewer')),
    -- NULL: every project; otherwise the projects this user may see.
    projects            bigint[],
    disabled_at         timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    password_changed_at timestamptz NOT NULL DEFAULT now()
);

-- The CSRF token is derived from the session secret (see auth.c), so
-- only the secret's hash is stored.
CREATE TABLE sessions (
    id_hash     bytea PRIMARY KEY,
    user_id     bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE api_tokens (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 128),
    token_hash  bytea NOT NULL UNIQUE,
    role        text NOT NULL CHECK (role IN ('admin', 'operator', 'viewer')),
    -- NULL: every project (admins only).
    project_id  bigint REFERENCES projects(id) ON DELETE CASCADE,
    created_by  bigint REFERENCES users(id) ON DELETE SET NULL,
    expires_at  timestamptz,
    revoked_at  timestamptz,
    last_used   timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE devices ADD COLUMN tags text[] NOT NULL DEFAULT '{}'
    CHECK (cardinality(tags) <= 32);
ALTER TABLE devices ADD COLUMN installed_version text;
CREATE INDEX devices_tags ON devices USING gin (tags);
CREATE INDEX devices_project_id ON devices (project_id, id);

ALTER TABLE enrollment_tokens ADD COLUMN name text CHECK (length(name) <= 128);

-- Renames and policy or validity changes reach every node's CA cache.
CREATE FUNCTION ql_projects_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('ql_project', OLD.id::text);
    RETURN NULL;
END $$;
CREATE TRIGGER projects_changed AFTER UPDATE OR DELETE ON projects
    FOR EACH ROW EXECUTE FUNCTION ql_projects_notify();

-- Who is calling: one round trip per API request. p_kind is 'session' or
-- 'token'; the row says the actor, the role and the project scope.
CREATE FUNCTION ql_authenticate(p_kind text, p_hash bytea)
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
        RETURN QUERY SELECT 'token:' || t.id, t.role,
                CASE WHEN t.project_id IS NULL THEN NULL
                     ELSE ARRAY[t.project_id] END,
                t.created_by, t.id
            FROM api_tokens t LEFT JOIN users u ON u.id = t.created_by
            WHERE t.token_hash = p_hash AND t.revoked_at IS NULL
              AND (t.expires_at IS NULL OR t.expires_at > now())
              AND (u.id IS NULL OR u.disabled_at IS NULL);
    END IF;
END $$;
