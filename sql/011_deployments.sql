-- 011: deployments as staged rollouts, and each device's state in them.
--
-- The set of target devices is fixed when a deployment is created (static
-- groups, not hawkBit's dynamic ones): a device enrolled later is not part
-- of it and gets the image through a new deployment. Each target is put in
-- one group; group 0 starts at once, group n+1 when enough of group n has
-- installed (success_threshold, percent of the group). Failures above
-- error_threshold percent of a started group pause the whole deployment
-- with the reason recorded. Every change of who-gets-what is announced on
-- channel ql_deploy so each node's device cache stays true:
--   "d <devices.id>"  one device's answer changed
--   "p <projects.id>" any device of the project may have changed
-- A device takes part in at most one unfinished deployment at a time: a
-- second deployment that targets it is refused (409) until the first one
-- is cancelled or the device has finished it (installed or failed).

CREATE TABLE deployments (
    id                bigserial PRIMARY KEY,
    project_id        bigint NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    -- NULL once the image is deleted; only a finished or cancelled
    -- deployment lets that happen (ql_images_deployed_guard)
    image_id          bigint REFERENCES images(id) ON DELETE SET NULL,
    image_name        text NOT NULL,
    image_version     text NOT NULL,
    target_tag        text,			-- NULL: every device
    success_threshold integer NOT NULL CHECK (success_threshold BETWEEN 1 AND 100),
    error_threshold   integer NOT NULL CHECK (error_threshold BETWEEN 0 AND 100),
    status            text NOT NULL DEFAULT 'active'
                      CHECK (status IN ('active', 'paused', 'cancelled', 'finished')),
    current_group     integer NOT NULL DEFAULT 0,	-- groups 0..current_group started
    pause_reason      text,
    created_by        text NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    finished_at       timestamptz
);
CREATE INDEX deployments_project ON deployments (project_id, id);
CREATE INDEX deployments_image ON deployments (image_id) WHERE status IN ('active', 'paused');

CREATE TABLE deployment_groups (
    deployment_id bigint NOT NULL REFERENCES deployments(id) ON DELETE CASCADE,
    ord           integer NOT NULL CHECK (ord >= 0),
    kind          text NOT NULL CHECK (kind IN ('count', 'percent')),
    amount        integer NOT NULL CHECK (amount >= 0),
    size          integer NOT NULL CHECK (size >= 0),	-- devices put in it
    -- failures acknowledged by a resume: the error threshold counts the rest
    failed_ack    integer NOT NULL DEFAULT 0,
    started_at    timestamptz,
    PRIMARY KEY (deployment_id, ord)
);

CREATE TABLE device_deployments (
    deployment_id bigint NOT NULL REFERENCES deployments(id) ON DELETE CASCADE,
    device_id     bigint NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    group_ord     integer NOT NULL,
    state         text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending',
                  'downloading', 'installing', 'installed', 'failed', 'cancelled')),
    progress      integer CHECK (progress BETWEEN 0 AND 100),
    detail        text CHECK (length(detail) <= 512),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    started_at    timestamptz,
    finished_at   timestamptz,
    PRIMARY KEY (deployment_id, device_id)
);
-- One unfinished deployment per device, also against racing creates.
CREATE UNIQUE INDEX device_deployments_open ON device_deployments (device_id)
    WHERE state IN ('pending', 'downloading', 'installing');
CREATE INDEX device_deployments_group ON device_deployments (deployment_id, group_ord, state);

-- A device's answer changes with its status (disabled, deleted): tell
-- every node's cache.
CREATE FUNCTION ql_devices_deploy_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('ql_deploy', 'd ' || OLD.id);
    RETURN NULL;
END $$;
CREATE TRIGGER devices_deploy_notify AFTER UPDATE OF status, tags OR DELETE ON devices
    FOR EACH ROW EXECUTE FUNCTION ql_devices_deploy_notify();

-- An image an unfinished deployment installs cannot be deleted, whichever
-- function deletes it; 23503 is the API's 409.
CREATE FUNCTION ql_images_deployed_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    dep bigint;
BEGIN
    SELECT id INTO dep FROM deployments
        WHERE image_id = OLD.id AND status IN ('active', 'paused') LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'image % is deployed (deployment %): cancel the deployment first',
            OLD.id, dep USING ERRCODE = '23503';
    END IF;
    RETURN OLD;
END $$;
CREATE TRIGGER images_deployed_guard BEFORE DELETE ON images
    FOR EACH ROW EXECUTE FUNCTION ql_images_deployed_guard();

-- Move a deployment on after a change in its devices' states; the caller
-- holds the deployment row locked, so nodes racing on reports agree.
-- Returns true when the status or the started groups changed.
CREATE FUNCTION ql_deploy_advance(p_id bigint) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    d deployments%ROWTYPE;
    g record;
    ngroups integer;
    changed boolean := false;
BEGIN
    SELECT count(*) INTO ngroups FROM deployment_groups WHERE deployment_id = p_id;
    LOOP
        SELECT * INTO d FROM deployments WHERE id = p_id;
        EXIT WHEN d.status <> 'active';
        -- any started group over its error threshold pauses everything
        FOR g IN SELECT dg.ord, dg.size, dg.failed_ack,
                count(*) FILTER (WHERE dd.state = 'failed') AS failed
                FROM deployment_groups dg LEFT JOIN device_deployments dd
                  ON dd.deployment_id = dg.deployment_id AND dd.group_ord = dg.ord
                WHERE dg.deployment_id = p_id AND dg.ord <= d.current_group
                GROUP BY dg.ord, dg.size, dg.failed_ack ORDER BY dg.ord LOOP
            IF g.size > 0 AND g.failed - g.failed_ack > 0 AND
                    (g.failed - g.failed_ack) * 100 > d.error_threshold * g.size THEN
                UPDATE deployments SET status = 'paused', updated_at = now(),
                    pause_reason = format('group %s: %s of %s devices failed, over the'
                        ' error threshold of %s%%', g.ord + 1, g.failed, g.size,
                        d.error_threshold)
                    WHERE id = p_id RETURNING * INTO d;
                PERFORM ql_audit('system', 'deployment.pause', p_id::text, 'ok',
                    d.pause_reason, d.project_id);
                RETURN true;
            END IF;
        END LOOP;
        SELECT dg.size,
               count(*) FILTER (WHERE dd.state = 'installed') AS installed,
               count(*) FILTER (WHERE dd.state IN ('pending', 'downloading', 'installing')) AS open
            INTO g
            FROM deployment_groups dg LEFT JOIN device_deployments dd
              ON dd.deployment_id = dg.deployment_id AND dd.group_ord = dg.ord
            WHERE dg.deployment_id = p_id AND dg.ord = d.current_group
            GROUP BY dg.size;
        IF g.size = 0 OR g.installed * 100 >= d.success_threshold * g.size THEN
            IF d.current_group + 1 < ngroups THEN
                UPDATE deployments SET current_group = current_group + 1,
                    updated_at = now() WHERE id = p_id;
                UPDATE deployment_groups SET started_at = now()
                    WHERE deployment_id = p_id AND ord = d.current_group + 1;
                changed := true;
                CONTINUE;
            END IF;
            IF NOT EXISTS (SELECT 1 FROM device_deployments WHERE deployment_id = p_id
                    AND state IN ('pending', 'downloading', 'installing')) THEN
                UPDATE deployments SET status = 'finished', finished_at = now(),
                    updated_at = now() WHERE id = p_id;
                changed := true;
            END IF;
        ELSIF g.open = 0 THEN
            UPDATE deployments SET status = 'paused', updated_at = now(),
                pause_reason = format('group %s cannot reach its success threshold'
                    ' of %s%%: %s of %s devices installed, none still working',
                    d.current_group + 1, d.success_threshold, g.installed, g.size)
                WHERE id = p_id RETURNING * INTO d;
            PERFORM ql_audit('system', 'deployment.pause', p_id::text, 'ok',
                d.pause_reason, d.project_id);
            changed := true;
        END IF;
        EXIT;
    END LOOP;
    RETURN changed;
END $$;

-- Create a deployment of a signed image to the project's active or
-- approved devices (with p_tag when not NULL), in groups given by kind
-- ('count' | 'percent') and amount. Devices are assigned in enrolment
-- order; a percentage is of all targets, rounded up; what the groups leave
-- over joins the last group. result: 'ok' (id set), 'no_image',
-- 'not_signed', 'no_targets', 'busy' (detail names the other deployment).
CREATE FUNCTION ql_deploy_create(p_project bigint, p_image bigint, p_tag text,
        p_kinds text[], p_amounts integer[], p_success integer, p_error integer,
        p_actor text)
RETURNS TABLE (result text, id bigint, detail text) LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    img images%ROWTYPE;
    targets bigint[];
    total integer;
    used integer := 0;
    n integer;
    ng integer := cardinality(p_kinds);
    dep bigint;
    busy bigint;
BEGIN
    SELECT * INTO img FROM images i WHERE i.id = p_image AND i.project_id = p_project
        FOR SHARE;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'no_image'::text, NULL::bigint, NULL::text;
        RETURN;
    END IF;
    IF img.status <> 'signed' THEN
        RETURN QUERY SELECT 'not_signed'::text, NULL::bigint,
            format('image %s is %s, not signed', img.id, img.status);
        RETURN;
    END IF;
    targets := ARRAY(SELECT d.id FROM devices d WHERE d.project_id = p_project
        AND d.status IN ('active', 'approved')
        AND (p_tag IS NULL OR d.tags @> ARRAY[p_tag]) ORDER BY d.id);
    total := cardinality(targets);
    IF total = 0 THEN
        RETURN QUERY SELECT 'no_targets'::text, NULL::bigint,
            'no active or approved device matches the target'::text;
        RETURN;
    END IF;
    SELECT dd.deployment_id INTO busy FROM device_deployments dd
        WHERE dd.device_id = ANY (targets)
          AND dd.state IN ('pending', 'downloading', 'installing') LIMIT 1;
    IF FOUND THEN
        RETURN QUERY SELECT 'busy'::text, busy, format('a target device is still in'
            ' deployment %s: cancel it or wait until it is finished', busy);
        RETURN;
    END IF;
    BEGIN
        INSERT INTO deployments (project_id, image_id, image_name, image_version,
                target_tag, success_threshold, error_threshold, created_by)
            VALUES (p_project, img.id, img.name, img.version, p_tag, p_success,
                p_error, p_actor)
            RETURNING deployments.id INTO dep;
        FOR i IN 1 .. ng LOOP
            n := CASE p_kinds[i] WHEN 'count' THEN p_amounts[i]
                 ELSE ceil(total * p_amounts[i] / 100.0)::integer END;
            n := least(n, total - used);
            IF i = ng THEN
                n := total - used;
            END IF;
            INSERT INTO deployment_groups (deployment_id, ord, kind, amount, size)
                VALUES (dep, i - 1, p_kinds[i], p_amounts[i], n);
            used := used + n;
        END LOOP;
        INSERT INTO device_deployments (deployment_id, device_id, group_ord)
            SELECT dep, t.dev, (SELECT min(g.ord) FROM (SELECT ord, sum(size)
                    OVER (ORDER BY ord) AS upto FROM deployment_groups
                    WHERE deployment_id = dep) g WHERE g.upto >= t.n)
            FROM unnest(targets) WITH ORDINALITY AS t(dev, n);
    EXCEPTION WHEN unique_violation THEN
        RETURN QUERY SELECT 'busy'::text, NULL::bigint,
            'a target device was just put in another deployment'::text;
        RETURN;
    END;
    UPDATE deployment_groups SET started_at = now() WHERE deployment_id = dep AND ord = 0;
    PERFORM ql_deploy_advance(dep);
    PERFORM ql_audit(p_actor, 'deployment.create', dep::text, 'ok',
        format('image %s (%s %s), %s devices%s, %s groups', img.id, img.name,
            img.version, total, CASE WHEN p_tag IS NULL THEN '' ELSE
            ' tagged ' || p_tag END, ng), p_project);
    PERFORM pg_notify('ql_deploy', 'p ' || p_project);
    RETURN QUERY SELECT 'ok'::text, dep, NULL::text;
END $$;

-- pause: active -> paused; resume: paused -> active (failures so far are
-- acknowledged, so the error threshold counts only new ones); cancel:
-- active or paused -> cancelled, every unfinished device with it.
-- result: 'ok', 'not_found' or 'conflict' (detail says why).
CREATE FUNCTION ql_deploy_action(p_project bigint, p_id bigint, p_action text,
        p_actor text)
RETURNS TABLE (result text, detail text) LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    d deployments%ROWTYPE;
BEGIN
    SELECT * INTO d FROM deployments WHERE id = p_id AND project_id = p_project
        FOR UPDATE;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'not_found'::text, NULL::text;
        RETURN;
    END IF;
    IF (p_action = 'pause' AND d.status <> 'active') OR
       (p_action = 'resume' AND d.status <> 'paused') OR
       (p_action = 'cancel' AND d.status NOT IN ('active', 'paused')) THEN
        RETURN QUERY SELECT 'conflict'::text,
            format('deployment %s is %s: cannot %s it', d.id, d.status, p_action);
        RETURN;
    END IF;
    IF p_action = 'pause' THEN
        UPDATE deployments SET status = 'paused', updated_at = now(),
            pause_reason = 'paused by ' || p_actor WHERE id = p_id;
    ELSIF p_action = 'resume' THEN
        UPDATE deployment_groups dg SET failed_ack = (SELECT count(*)
                FROM device_deployments dd WHERE dd.deployment_id = p_id
                  AND dd.group_ord = dg.ord AND dd.state = 'failed')
            WHERE dg.deployment_id = p_id AND dg.ord <= d.current_group;
        UPDATE deployments SET status = 'active', updated_at = now(),
            pause_reason = NULL WHERE id = p_id;
    ELSE
        UPDATE device_deployments SET state = 'cancelled', updated_at = now(),
            finished_at = now() WHERE deployment_id = p_id
              AND state IN ('pending', 'downloading', 'installing');
        UPDATE deployments SET status = 'cancelled', updated_at = now(),
            finished_at = now() WHERE id = p_id;
    END IF;
    PERFORM ql_audit(p_actor, 'deployment.' || p_action, p_id::text, 'ok',
        d.status || ' -> ' || CASE p_action WHEN 'pause' THEN 'paused'
            WHEN 'resume' THEN 'active' ELSE 'cancelled' END, p_project);
    IF p_action = 'resume' THEN
        PERFORM ql_deploy_advance(p_id);
    END IF;
    PERFORM pg_notify('ql_deploy', 'p ' || p_project);
    RETURN QUERY SELECT 'ok'::text, NULL::text;
END $$;

-- A device reports on its deployment. Legal moves: pending -> any of
-- downloading, installing, installed, failed (a pending device may start
-- only while the deployment is active and its group has started);
-- downloading -> downloading (progress), installing, installed, failed;
-- installing -> installing, installed, failed; installed and failed are
-- final (repeating the same final state is accepted and changes nothing).
-- A reported version is what the device runs now: it is recorded.
-- result: 'ok', 'not_found' (not this device's deployment) or 'conflict'.
CREATE FUNCTION ql_deploy_report(p_device bigint, p_id bigint, p_state text,
        p_progress integer, p_detail text, p_version text)
RETURNS TABLE (result text, detail text) LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    d deployments%ROWTYPE;
    dd device_deployments%ROWTYPE;
    is_final boolean := p_state IN ('installed', 'failed');
BEGIN
    SELECT * INTO d FROM deployments WHERE id = p_id FOR UPDATE;
    IF FOUND THEN
        SELECT * INTO dd FROM device_deployments
            WHERE deployment_id = p_id AND device_id = p_device FOR UPDATE;
    END IF;
    IF d.id IS NULL OR dd.deployment_id IS NULL THEN
        RETURN QUERY SELECT 'not_found'::text,
            format('deployment %s is not this device''s', p_id);
        RETURN;
    END IF;
    IF dd.state = 'cancelled' OR d.status = 'cancelled' THEN
        RETURN QUERY SELECT 'conflict'::text, format('deployment %s was cancelled', p_id);
        RETURN;
    END IF;
    IF dd.state = p_state AND is_final THEN
        RETURN QUERY SELECT 'ok'::text, NULL::text;
        RETURN;
    END IF;
    IF dd.state IN ('installed', 'failed') OR
       (dd.state = 'installing' AND p_state = 'downloading') THEN
        RETURN QUERY SELECT 'conflict'::text, format('deployment %s: %s -> %s is not'
            ' a legal transition', p_id, dd.state, p_state);
        RETURN;
    END IF;
    IF dd.state = 'pending' AND (d.status <> 'active' OR dd.group_ord > d.current_group) THEN
        RETURN QUERY SELECT 'conflict'::text, format('deployment %s has not started'
            ' for this device (%s)', p_id, CASE WHEN d.status <> 'active' THEN d.status
            ELSE 'its group waits' END);
        RETURN;
    END IF;
    UPDATE device_deployments SET state = p_state, updated_at = now(),
        progress = CASE WHEN p_state = 'installed' THEN 100 ELSE
            coalesce(p_progress, progress) END,
        detail = coalesce(p_detail, detail),
        started_at = coalesce(started_at, now()),
        finished_at = CASE WHEN is_final THEN now() END
        WHERE deployment_id = p_id AND device_id = p_device;
    IF p_version IS NOT NULL THEN
        UPDATE devices SET installed_version = p_version
            WHERE id = p_device AND installed_version IS DISTINCT FROM p_version;
    END IF;
    IF is_final AND ql_deploy_advance(p_id) THEN
        PERFORM pg_notify('ql_deploy', 'p ' || d.project_id);
    END IF;
    PERFORM pg_notify('ql_deploy', 'd ' || p_device);
    RETURN QUERY SELECT 'ok'::text, NULL::text;
END $$;

-- What the update API needs about the device holding certificate
-- (p_ca, p_serial): trust as devices_trust_get has it, and the deployment
-- that applies to it now, if any: an unfinished one whose group has
-- started, while the deployment is active (or paused, for a device that
-- is already downloading or installing). plpgsql so that the signing
-- columns (manifest_der) are resolved when called, not when created.
CREATE FUNCTION ql_device_update(p_ca bigint, p_serial text)
RETURNS TABLE (trust text, device bigint, project bigint, deployment bigint,
        image bigint, name text, version text, size bigint, sha256 text,
        encrypted boolean, encrypted_size bigint, manifest text, upload_id text)
LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_column
DECLARE
    t text;
    dev bigint;
    proj bigint;
BEGIN
    SELECT CASE WHEN c.revoked_at IS NOT NULL THEN 'revoked'
                WHEN c.not_after <= now() THEN 'expired'
                WHEN c.kind <> 'device' OR d.id IS NULL THEN 'not_device'
                WHEN d.status NOT IN ('active', 'approved') THEN 'inactive'
                ELSE 'ok' END, d.id, d.project_id
        INTO t, dev, proj
        FROM certificates c LEFT JOIN devices d ON d.id = c.device
        WHERE c.serial = p_serial AND c.ca_id = p_ca;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'unknown'::text, NULL::bigint, NULL::bigint, NULL::bigint,
            NULL::bigint, NULL::text, NULL::text, NULL::bigint, NULL::text,
            NULL::boolean, NULL::bigint, NULL::text, NULL::text;
        RETURN;
    END IF;
    IF t <> 'ok' THEN
        RETURN QUERY SELECT t, dev, proj, NULL::bigint, NULL::bigint, NULL::text,
            NULL::text, NULL::bigint, NULL::text, NULL::boolean, NULL::bigint,
            NULL::text, NULL::text;
        RETURN;
    END IF;
    RETURN QUERY SELECT t, dev, proj, dep.id, i.id, i.name, i.version, i.size,
            encode(i.sha256, 'hex'),
            i.encrypt AND e.len IS NOT NULL, e.len,
            translate(encode(i.manifest_der, 'base64'), E'\n', ''), i.upload_id
        FROM device_deployments dd
        JOIN deployments dep ON dep.id = dd.deployment_id
        JOIN images i ON i.id = dep.image_id
        LEFT JOIN LATERAL (SELECT ch.off + length(ch.data) AS len FROM image_chunks ch
            WHERE ch.upload_id = i.upload_id AND ch.variant = 1
            ORDER BY ch.off DESC LIMIT 1) e ON true
        WHERE dd.device_id = dev
          AND dd.state IN ('pending', 'downloading', 'installing')
          AND dd.group_ord <= dep.current_group
          AND (dep.status = 'active' OR (dep.status = 'paused' AND dd.state <> 'pending'));
    IF NOT FOUND THEN
        RETURN QUERY SELECT t, dev, proj, NULL::bigint, NULL::bigint, NULL::text,
            NULL::text, NULL::bigint, NULL::text, NULL::boolean, NULL::bigint,
            NULL::text, NULL::text;
    END IF;
END $$;

-- The detached signature of an image (DER), resolved when called.
CREATE FUNCTION ql_image_signature(p_image bigint) RETURNS bytea
LANGUAGE plpgsql STABLE AS $$
DECLARE
    s bytea;
BEGIN
    SELECT signature_der INTO s FROM images WHERE id = p_image;
    RETURN s;
END $$;

-- last_seen of many devices at once (coalesced polls): never moves back.
CREATE FUNCTION ql_devices_seen(p_ids bigint[], p_at bigint[]) RETURNS void
LANGUAGE sql AS $$
    UPDATE devices d SET last_seen = to_timestamp(x.at)
        FROM unnest(p_ids, p_at) AS x(id, at)
        WHERE d.id = x.id AND (d.last_seen IS NULL OR d.last_seen < to_timestamp(x.at));
$$;
