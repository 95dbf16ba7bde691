-- 005_users.sql: SQL functions for users, API tokens, enrollment tokens,
-- the allowlist and the audit log in the admin API. Each function is one
-- transaction that writes its audit row next to its change; a refusal
-- returns a status word and writes nothing.

-- Users as the API shows them: project names (NULL = every project,
-- '' = none), ISO 8601 UTC times. Project names are [a-z0-9-], so a comma
-- joins them unambiguously.
CREATE VIEW ql_users_v AS
    SELECT u.id, u.name, u.role,
        CASE WHEN u.projects IS NULL THEN NULL
             ELSE coalesce((SELECT string_agg(p.name, ',' ORDER BY p.name)
                            FROM projects p WHERE p.id = ANY(u.projects)), '')
        END AS projects,
        u.disabled_at IS NOT NULL AS disabled,
        to_char(u.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS created_at,
        u.projects AS project_ids
    FROM users u;

CREATE VIEW ql_api_tokens_v AS
    SELECT t.id, t.name, t.role, p.name AS project,
        to_char(t.expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS expires_at,
        to_char(t.revoked_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS revoked_at,
        to_char(t.last_used AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS last_used,
        to_char(t.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS created_at,
        t.project_id
    FROM api_tokens t LEFT JOIN projects p ON p.id = t.project_id;

-- Project names to ids within the caller's scope (p_scope NULL = all).
-- A name that does not exist and one the caller cannot see are the same
-- to the caller: p_bad names the first of them.
CREATE FUNCTION ql_project_ids(p_names text[], p_scope bigint[],
        OUT ids bigint[], OUT bad text)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    n text;
    pid bigint;
BEGIN
    IF p_names IS NULL THEN
        RETURN;
    END IF;
    ids := '{}';
    FOREACH n IN ARRAY p_names LOOP
        SELECT id INTO pid FROM projects WHERE name = n;
        IF NOT FOUND OR (p_scope IS NOT NULL AND NOT pid = ANY(p_scope)) THEN
            bad := n;
            RETURN;
        END IF;
        IF NOT pid = ANY(ids) THEN
            ids := ids || pid;
        END IF;
    END LOOP;
END $$;

-- Create a user. Status: ok, exists, unknown_project (detail: the name),
-- scope (a caller limited to some projects must give projects).
CREATE FUNCTION ql_user_create(p_name text, p_hash text, p_role text,
        p_projects text[], p_scope bigint[], p_actor text)
RETURNS TABLE (status text, detail text, name text, role text,
    projects text, disabled boolean, created_at text)
LANGUAGE plpgsql AS $$
DECLARE
    r record;
    uid bigint;
BEGIN
    SELECT * INTO r FROM ql_project_ids(p_projects, p_scope);
    IF r.bad IS NOT NULL THEN
        RETURN QUERY SELECT 'unknown_project', r.bad, NULL, NULL, NULL, NULL::boolean, NULL;
        RETURN;
    END IF;
    IF p_projects IS NULL AND p_scope IS NOT NULL THEN
        RETURN QUERY SELECT 'scope', NULL, NULL, NULL, NULL, NULL::boolean, NULL;
        RETURN;
    END IF;
    IF EXISTS (SELECT 1 FROM users u WHERE u.name = p_name) THEN
        RETURN QUERY SELECT 'exists', NULL, NULL, NULL, NULL, NULL::boolean, NULL;
        RETURN;
    END IF;
    INSERT INTO users (name, password_hash, role, projects)
        VALUES (p_name, p_hash, p_role, r.ids) RETURNING id INTO uid;
    PERFORM ql_audit(p_actor, 'user.create', p_name, 'ok',
        'role ' || p_role || CASE WHEN r.ids IS NULL THEN ', all projects'
            ELSE ', projects ' || array_to_string(p_projects, ',') END, NULL);
    RETURN QUERY SELECT 'ok', NULL, v.name, v.role, v.projects, v.disabled,
        v.created_at FROM ql_users_v v WHERE v.id = uid;
END $$;

-- Change a user's role, projects, disabled state or password (an admin's
-- reset). Disabling ends the user's sessions in the same transaction; so
-- does a reset by someone else. Status: ok, not_found, self (a caller may
-- not disable or demote itself), last_admin (the last enabled admin of
-- every project would go), unknown_project, scope.
CREATE FUNCTION ql_user_update(p_name text, p_role text, p_disabled boolean,
        p_set_projects boolean, p_projects text[], p_hash text,
        p_scope bigint[], p_self bigint, p_actor text)
RETURNS TABLE (status text, detail text, name text, role text,
    projects text, disabled boolean, created_at text)
LANGUAGE plpgsql AS $$
DECLARE
    u users%ROWTYPE;
    r record;
    new_role text;
    new_projects bigint[];
    new_disabled boolean;
    changes text[] := '{}';
BEGIN
    -- Admin changes one at a time, so two admins cannot demote each other.
    PERFORM pg_advisory_xact_lock(7166210933);
    SELECT * INTO u FROM users WHERE users.name = p_name FOR UPDATE;
    -- A caller limited to some projects manages only users inside them.
    IF NOT FOUND OR (p_scope IS NOT NULL AND
            (u.projects IS NULL OR NOT u.projects <@ p_scope)) THEN
        RETURN QUERY SELECT 'not_found', NULL, NULL, NULL, NULL, NULL::boolean, NULL;
        RETURN;
    END IF;
    new_role := coalesce(p_role, u.role);
    new_disabled := coalesce(p_disabled, u.disabled_at IS NOT NULL);
    new_projects := u.projects;
    IF p_set_projects THEN
        SELECT * INTO r FROM ql_project_ids(p_projects, p_scope);
        IF r.bad IS NOT NULL THEN
            RETURN QUERY SELECT 'unknown_project', r.bad, NULL, NULL, NULL, NULL::boolean, NULL;
            RETURN;
        END IF;
        IF p_projects IS NULL AND p_scope IS NOT NULL THEN
            RETURN QUERY SELECT 'scope', NULL, NULL, NULL, NULL, NULL::boolean, NULL;
            RETURN;
        END IF;
        new_projects := r.ids;
    END IF;
    IF u.id = p_self AND (new_role <> 'admin' OR new_disabled) THEN
        RETURN QUERY SELECT 'self', NULL, NULL, NULL, NULL, NULL::boolean, NULL;
        RETURN;
    END IF;
    IF u.role = 'admin' AND u.disabled_at IS NULL AND u.projects IS NULL
            AND (new_role <> 'admin' OR new_disabled OR new_projects IS NOT NULL)
            AND NOT EXISTS (SELECT 1 FROM users o WHERE o.id <> u.id
                AND o.role = 'admin' AND o.disabled_at IS NULL AND o.projects IS NULL) THEN
        RETURN QUERY SELECT 'last_admin', NULL, NULL, NULL, NULL, NULL::boolean, NULL;
        RETURN;
    END IF;
    IF new_role <> u.role THEN
        changes := changes || ('role ' || new_role);
    END IF;
    IF new_projects IS DISTINCT FROM u.projects THEN
        changes := changes || CASE WHEN new_projects IS NULL THEN 'all projects'
            ELSE 'projects ' || array_to_string(p_projects, ',') END;
    END IF;
    IF new_disabled <> (u.disabled_at IS NOT NULL) THEN
        changes := changes || CASE WHEN new_disabled THEN 'disabled' ELSE 'enabled' END;
    END IF;
    IF p_hash IS NOT NULL THEN
        changes := changes || 'password reset'::text;
    END IF;
    UPDATE users SET role = new_role, projects = new_projects,
        disabled_at = CASE WHEN NOT new_disabled THEN NULL
                           ELSE coalesce(disabled_at, now()) END,
        password_hash = coalesce(p_hash, password_hash),
        password_changed_at = CASE WHEN p_hash IS NULL THEN password_changed_at
                                   ELSE now() END
        WHERE id = u.id;
    IF new_disabled OR (p_hash IS NOT NULL AND u.id IS DISTINCT FROM p_self) THEN
        DELETE FROM sessions WHERE user_id = u.id;
    END IF;
    PERFORM ql_audit(p_actor, 'user.update', u.name, 'ok',
        nullif(array_to_string(changes, '; '), ''), NULL);
    RETURN QUERY SELECT 'ok', NULL, v.name, v.role, v.projects, v.disabled,
        v.created_at FROM ql_users_v v WHERE v.id = u.id;
END $$;

-- Create an API token (its secret's hash). Status: ok, unknown_project,
-- scope (a caller limited to some projects must name one of them).
CREATE FUNCTION ql_api_token_create(p_name text, p_hash bytea, p_role text,
        p_project text, p_days integer, p_scope bigint[], p_by bigint,
        p_actor text)
RETURNS TABLE (status text, detail text, id bigint, name text, role text,
    project text, expires_at text, revoked_at text, last_used text,
    created_at text)
LANGUAGE plpgsql AS $$
DECLARE
    r record;
    tid bigint;
BEGIN
    IF p_project IS NULL AND p_scope IS NOT NULL THEN
        RETURN QUERY SELECT 'scope', NULL, NULL::bigint, NULL, NULL, NULL, NULL, NULL, NULL, NULL;
        RETURN;
    END IF;
    SELECT * INTO r FROM ql_project_ids(CASE WHEN p_project IS NULL THEN NULL
                                         ELSE ARRAY[p_project] END, p_scope);
    IF r.bad IS NOT NULL THEN
        RETURN QUERY SELECT 'unknown_project', r.bad, NULL::bigint, NULL, NULL, NULL, NULL, NULL, NULL, NULL;
        RETURN;
    END IF;
    INSERT INTO api_tokens (name, token_hash, role, project_id, created_by, expires_at)
        VALUES (p_name, p_hash, p_role, r.ids[1],
            (SELECT u.id FROM users u WHERE u.id = p_by),
            CASE WHEN p_days IS NULL THEN NULL
                 ELSE now() + make_interval(days => p_days) END)
        RETURNING api_tokens.id INTO tid;
    PERFORM ql_audit(p_actor, 'api_token.create', tid::text, 'ok',
        'role ' || p_role || ', ' || coalesce('project ' || p_project, 'all projects'),
        r.ids[1]);
    RETURN QUERY SELECT 'ok', NULL, v.id, v.name, v.role, v.project,
        v.expires_at, v.revoked_at, v.last_used, v.created_at
        FROM ql_api_tokens_v v WHERE v.id = tid;
END $$;

-- Revoke an API token. Status: ok, not_found (or outside the caller's
-- scope), revoked (already).
CREATE FUNCTION ql_api_token_revoke(p_id bigint, p_scope bigint[], p_actor text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    t api_tokens%ROWTYPE;
BEGIN
    SELECT * INTO t FROM api_tokens WHERE id = p_id FOR UPDATE;
    IF NOT FOUND OR (p_scope IS NOT NULL AND
            (t.project_id IS NULL OR NOT t.project_id = ANY(p_scope))) THEN
        RETURN 'not_found';
    END IF;
    IF t.revoked_at IS NOT NULL THEN
        RETURN 'revoked';
    END IF;
    UPDATE api_tokens SET revoked_at = now() WHERE id = p_id;
    PERFORM ql_audit(p_actor, 'api_token.revoke', p_id::text, 'ok', t.name,
        t.project_id);
    RETURN 'ok';
END $$;

-- Revoke an enrollment token of a project. Status: ok, not_found, revoked.
CREATE FUNCTION ql_enrollment_token_revoke(p_project bigint, p_id bigint,
        p_actor text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    t enrollment_tokens%ROWTYPE;
BEGIN
    SELECT * INTO t FROM enrollment_tokens
        WHERE id = p_id AND project_id = p_project FOR UPDATE;
    IF NOT FOUND THEN
        RETURN 'not_found';
    END IF;
    IF t.revoked_at IS NOT NULL THEN
        RETURN 'revoked';
    END IF;
    UPDATE enrollment_tokens SET revoked_at = now() WHERE id = p_id;
    PERFORM ql_audit(p_actor, 'enrollment_token.revoke', p_id::text, 'ok',
        t.name, p_project);
    RETURN 'ok';
END $$;

-- Bulk allowlist add: all or nothing (the caller has checked every ID, and
-- the table's CHECK would refuse the whole batch anyway), one audit row.
-- Every ID sent is either added or already present.
CREATE FUNCTION ql_allowlist_add(p_project bigint, p_ids text[], p_actor text)
RETURNS TABLE (added bigint, already_present bigint)
LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
    total bigint := coalesce(cardinality(p_ids), 0);
BEGIN
    WITH i AS (
        INSERT INTO allowlist (project_id, device_id)
            SELECT p_project, d FROM unnest(p_ids) AS d
            ON CONFLICT DO NOTHING RETURNING 1)
    SELECT count(*) INTO n FROM i;
    PERFORM ql_audit(p_actor, 'allowlist.add', NULL, 'ok',
        format('%s sent, %s added, %s already present', total, n, total - n),
        p_project);
    RETURN QUERY SELECT n, total - n;
END $$;
