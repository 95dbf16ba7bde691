-- 004_devices.sql: the admin API's devices and certificates: the row shapes
-- it answers with (views), lists planned per call so each filter gets its
-- index, and state changes that write their audit rows in the same
-- transaction. Revocations go through UPDATE of certificates.revoked_at,
-- so the trigger of 002 tells every node's OCSP cache and CRL at once.

-- Keyset pagination walks an index in key order. Devices are ordered by
-- device_id in byte order (COLLATE "C") whatever the database's collation:
-- the same index then serves the order and a prefix search (^@). The
-- INCLUDE columns let a filter be checked in the index (index-only scan)
-- instead of fetching every skipped row.
CREATE INDEX devices_project_device_c ON devices (project_id, device_id COLLATE "C")
    INCLUDE (id, label);
CREATE INDEX devices_project_status_device_c ON devices (project_id, status,
    device_id COLLATE "C") INCLUDE (id, label);
CREATE INDEX devices_project_label_prefix ON devices (project_id, lower(label) text_pattern_ops);
CREATE INDEX certificates_ca_serial ON certificates (ca_id, serial)
    INCLUDE (kind, not_after, revoked_at);

-- A device as the API shows it. The current certificate is the newest
-- unrevoked, unexpired one. Tags are joined with U+001F, which a tag
-- cannot hold. Columns after cert_not_after are for filtering only.
CREATE VIEW ql_devices_api AS
SELECT d.device_id, d.label, d.status, array_to_string(d.tags, chr(31)) AS tag_list,
    to_char(d.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS created_at,
    to_char(d.last_seen AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS last_seen,
    d.installed_version, c.serial AS cert_serial,
    to_char(c.not_after AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS cert_not_after,
    d.id, d.project_id, d.tags
FROM devices d
LEFT JOIN LATERAL (
    SELECT c.serial, c.not_after FROM certificates c
    WHERE c.device = d.id AND c.kind = 'device' AND c.revoked_at IS NULL
      AND c.not_after > now()
    ORDER BY c.not_before DESC, c.serial DESC LIMIT 1) c ON true;

-- A device certificate as the API shows it (without the DER).
CREATE VIEW ql_certs_api AS
SELECT c.serial, d.device_id, c.subject,
    to_char(c.not_before AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS not_before,
    to_char(c.not_after AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS not_after,
    to_char(c.revoked_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS revoked_at,
    c.revocation_reason,
    c.ca_id, c.device, c.not_after AS not_after_ts, c.revoked_at AS revoked_ts
FROM certificates c LEFT JOIN devices d ON d.id = c.device
WHERE c.kind = 'device';

-- Lists are built from fixed fragments and run with EXECUTE ... USING: the
-- values stay parameters (never SQL text), and each call is planned with
-- them, so a filter gets its own index instead of one generic plan for
-- "($2 IS NULL OR ...)".
CREATE FUNCTION ql_devices_list(p_project bigint, p_status text, p_tag text,
        p_q text, p_after text, p_limit integer)
RETURNS SETOF ql_devices_api LANGUAGE plpgsql STABLE AS $$
DECLARE
    f text := ' AND d.project_id = $1 AND d.device_id COLLATE "C" > $5';
    tagged integer;
BEGIN
    IF p_status IS NOT NULL THEN
        f := f || ' AND d.status = $2';
    END IF;
    IF p_tag IS NOT NULL THEN
        f := f || ' AND d.tags @> ARRAY[$3]';
    END IF;
    -- Walking device_id order costs 1/selectivity rows per page: fine for
    -- a common tag, ruinous for a rare one. A rare tag (a bounded count
    -- through the GIN index says so) is read through that index and its few
    -- rows sorted; the sort key is an expression so the planner cannot turn
    -- back to the walk.
    IF p_tag IS NOT NULL AND p_q IS NULL THEN
        SELECT count(*) INTO tagged FROM (SELECT 1 FROM devices d
            WHERE d.project_id = p_project AND d.tags @> ARRAY[p_tag] LIMIT 5001) x;
        IF tagged <= 5000 THEN
            RETURN QUERY EXECUTE 'SELECT * FROM ql_devices_api v WHERE v.id IN ('
                'SELECT d.id FROM devices d WHERE true' || f ||
                ' ORDER BY (d.device_id || '''') COLLATE "C" LIMIT $6)'
                ' ORDER BY v.device_id COLLATE "C" LIMIT $6'
                USING p_project, p_status, p_tag, p_q, p_after, p_limit;
            RETURN;
        END IF;
    END IF;
    IF p_q IS NULL THEN
        RETURN QUERY EXECUTE 'SELECT * FROM ql_devices_api d WHERE true' || f ||
            ' ORDER BY d.device_id COLLATE "C" LIMIT $6'
            USING p_project, p_status, p_tag, p_q, p_after, p_limit;
        RETURN;
    END IF;
    -- One ordered range scan for the device_id prefix, one for the label
    -- prefix: an OR of both would be planned as a walk of every device
    -- when the matches sit at the end of the key order.
    RETURN QUERY EXECUTE 'SELECT * FROM ql_devices_api v WHERE v.id IN ('
        '(SELECT d.id FROM devices d WHERE d.device_id COLLATE "C" ^@ lower($4)' || f ||
        ' ORDER BY d.device_id COLLATE "C" LIMIT $6) UNION ALL'
        ' (SELECT d.id FROM devices d WHERE lower(d.label) ^@ lower($4)' || f ||
        ' ORDER BY d.device_id COLLATE "C" LIMIT $6))'
        ' ORDER BY v.device_id COLLATE "C" LIMIT $6'
        USING p_project, p_status, p_tag, p_q, p_after, p_limit;
END $$;

-- p_device NULL: the whole project; otherwise that device's certificates,
-- and no_data_found (P0002) when the project has no such device. The page
-- is chosen on certificates alone (an index-only scan of (ca_id, serial)
-- checks the filters without visiting skipped rows), then joined.
CREATE FUNCTION ql_certs_list(p_project bigint, p_device text, p_valid boolean,
        p_expiring integer, p_revoked boolean, p_after text, p_limit integer)
RETURNS SETOF ql_certs_api LANGUAGE plpgsql STABLE AS $$
DECLARE
    ca bigint;
    dev bigint;
    f text := '';
BEGIN
    -- Device certificates come from the project's one issuing CA; a single
    -- ca_id keeps the (ca_id, serial) index in serial order.
    SELECT id INTO ca FROM cas WHERE project_id = p_project AND kind = 'issuing';
    IF p_device IS NOT NULL THEN
        SELECT id INTO dev FROM devices
            WHERE project_id = p_project AND device_id = p_device;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'no such device' USING ERRCODE = 'no_data_found';
        END IF;
        f := f || ' AND c.device = $2';
    END IF;
    IF p_valid THEN
        f := f || ' AND c.revoked_at IS NULL AND c.not_after > now()';
    ELSIF NOT p_valid THEN
        f := f || ' AND (c.revoked_at IS NOT NULL OR c.not_after <= now())';
    END IF;
    IF p_expiring IS NOT NULL THEN
        f := f || ' AND c.revoked_at IS NULL AND c.not_after > now()'
            ' AND c.not_after <= now() + make_interval(days => $4)';
    END IF;
    IF p_revoked THEN
        f := f || ' AND c.revoked_at IS NOT NULL';
    ELSIF NOT p_revoked THEN
        f := f || ' AND c.revoked_at IS NULL';
    END IF;
    RETURN QUERY EXECUTE 'SELECT * FROM ql_certs_api v WHERE v.serial IN ('
        'SELECT c.serial FROM certificates c WHERE c.ca_id = $1'
        ' AND c.kind = ''device'' AND c.serial > $6' || f ||
        ' ORDER BY c.serial LIMIT $7) ORDER BY v.serial LIMIT $7'
        USING ca, dev, p_valid, p_expiring, p_revoked, p_after, p_limit;
END $$;

-- approve: pending -> approved; reject: pending -> rejected; disable:
-- anything but rejected (or already disabled) -> disabled; enable:
-- disabled -> active with a valid certificate, else approved. result is
-- 'ok', 'conflict' (dev holds the unchanged device) or 'not_found'.
CREATE FUNCTION ql_device_set_status(p_project bigint, p_device text,
        p_action text, p_actor text)
RETURNS TABLE (result text, dev ql_devices_api) LANGUAGE plpgsql AS $$
DECLARE
    d devices%ROWTYPE;
    to_status text;
BEGIN
    SELECT * INTO d FROM devices
        WHERE project_id = p_project AND device_id = p_device FOR UPDATE;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'not_found'::text, NULL::ql_devices_api;
        RETURN;
    END IF;
    to_status := CASE
        WHEN p_action = 'approve' AND d.status = 'pending' THEN 'approved'
        WHEN p_action = 'reject' AND d.status = 'pending' THEN 'rejected'
        WHEN p_action = 'disable' AND d.status NOT IN ('rejected', 'disabled')
            THEN 'disabled'
        WHEN p_action = 'enable' AND d.status = 'disabled' THEN
            CASE WHEN EXISTS (SELECT 1 FROM certificates c
                    WHERE c.device = d.id AND c.kind = 'device'
                      AND c.revoked_at IS NULL AND c.not_after > now())
                THEN 'active' ELSE 'approved' END
        END;
    IF to_status IS NULL THEN
        RETURN QUERY SELECT 'conflict'::text, v FROM ql_devices_api v WHERE v.id = d.id;
        RETURN;
    END IF;
    UPDATE devices SET status = to_status WHERE id = d.id;
    PERFORM ql_audit(p_actor, 'device.' || p_action, d.device_id, 'ok',
        d.status || ' -> ' || to_status, p_project);
    RETURN QUERY SELECT 'ok'::text, v FROM ql_devices_api v WHERE v.id = d.id;
END $$;

-- Replace the tag set (duplicates dropped, sorted). p_tags is checked by
-- the caller: 1-64 of [A-Za-z0-9._:-] each, so ',' cannot be in one.
CREATE FUNCTION ql_device_set_tags(p_project bigint, p_device text,
        p_tags text, p_actor text)
RETURNS TABLE (result text, dev ql_devices_api) LANGUAGE plpgsql AS $$
DECLARE
    d devices%ROWTYPE;
    t text[] := ARRAY(SELECT DISTINCT x FROM unnest(string_to_array(p_tags, ',')) x
                      ORDER BY x);
BEGIN
    UPDATE devices SET tags = t
        WHERE project_id = p_project AND device_id = p_device RETURNING * INTO d;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'not_found'::text, NULL::ql_devices_api;
        RETURN;
    END IF;
    PERFORM ql_audit(p_actor, 'device.tags', d.device_id, 'ok',
        'tags: ' || array_to_string(t, ','), p_project);
    RETURN QUERY SELECT 'ok'::text, v FROM ql_devices_api v WHERE v.id = d.id;
END $$;

-- Delete a device: revoke its unrevoked certificates (cessationOfOperation)
-- first, since certificates.device is ON DELETE SET NULL, then delete it.
-- One transaction; NULL when there is no such device, else the number of
-- certificates revoked.
CREATE FUNCTION ql_device_delete(p_project bigint, p_device text, p_actor text)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    d devices%ROWTYPE;
    s text;
    n integer := 0;
BEGIN
    SELECT * INTO d FROM devices
        WHERE project_id = p_project AND device_id = p_device FOR UPDATE;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    FOR s IN UPDATE certificates SET revoked_at = now(), revocation_reason = 5
            WHERE device = d.id AND revoked_at IS NULL RETURNING serial LOOP
        PERFORM ql_audit(p_actor, 'certificate.revoke', s, 'ok',
            'reason cessationOfOperation: device ' || d.device_id || ' deleted',
            p_project);
        n := n + 1;
    END LOOP;
    DELETE FROM devices WHERE id = d.id;
    PERFORM ql_audit(p_actor, 'device.delete', d.device_id, 'ok',
        n || ' certificates revoked', p_project);
    RETURN n;
END $$;
