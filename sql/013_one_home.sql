-- 013: one home for two rules that statements in C and the SQL functions
-- had each written out: a timestamp as the API shows it, and revoking a
-- certificate with its audit row. New statements and functions call these.

-- ISO 8601 in UTC to the second, "2026-12-02T01:02:03Z"; NULL for NULL.
-- A plain SQL function, so the planner inlines it.
CREATE FUNCTION ql_iso(p_at timestamptz) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT to_char(p_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
$$;

-- Revoke one certificate that is not revoked yet, and audit it, in the
-- caller's transaction. A concurrent revocation of the same row makes
-- READ COMMITTED re-check revoked_at IS NULL, so exactly one caller
-- revokes; the others (and a serial that does not exist) get NULLs. The
-- trigger of 002/008 tells every node's OCSP, CRL and TLS check.
CREATE FUNCTION ql_cert_revoke(p_serial text, p_reason smallint, p_actor text,
        p_detail text, p_project bigint, OUT r_at timestamptz, OUT r_audit bigint)
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE certificates SET revoked_at = now(), revocation_reason = p_reason
        WHERE serial = p_serial AND revoked_at IS NULL
        RETURNING revoked_at INTO r_at;
    IF FOUND THEN
        r_audit := ql_audit(p_actor, 'certificate.revoke', p_serial, 'ok',
            p_detail, p_project);
    END IF;
END $$;

-- As in 006, with each certificate revoked through ql_cert_revoke.
CREATE OR REPLACE FUNCTION ql_device_delete(p_project bigint, p_device text, p_actor text)
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
    FOR s IN SELECT serial FROM certificates
            WHERE device = d.id AND revoked_at IS NULL ORDER BY serial LOOP
        IF (SELECT r_at FROM ql_cert_revoke(s, 5::smallint, p_actor,
                'reason cessationOfOperation: device ' || d.device_id || ' deleted',
                p_project)) IS NOT NULL THEN
            n := n + 1;
        END IF;
    END LOOP;
    DELETE FROM enrollment_reservations
        WHERE project_id = p_project AND device_id = d.device_id;
    DELETE FROM allowlist WHERE project_id = p_project AND device_id = d.device_id;
    IF FOUND THEN
        PERFORM ql_audit(p_actor, 'allowlist.remove', d.device_id, 'ok', 'device deleted',
            p_project);
    END IF;
    DELETE FROM devices WHERE id = d.id;
    PERFORM ql_audit(p_actor, 'device.delete', d.device_id, 'ok',
        n || ' certificates revoked', p_project);
    RETURN n;
END $$;
