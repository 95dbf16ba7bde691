-- 016: a refused enrollment commit writes nothing but the spent
-- reservation. 014's ql_enroll_commit created the device row (and bumped
-- an existing one's last_seen) before it found the enrollment token
-- revoked, so a refused first enrollment left a device behind with no
-- certificate; and it consumed the TPM attestation session before that
-- refusal. Now every refusal is decided on locked rows first, then the
-- writes follow, none of which can refuse.

CREATE OR REPLACE FUNCTION ql_enroll_commit(p_reservation bigint, p_serial text, p_cert bytea,
        p_subject text, p_not_before timestamptz, p_not_after timestamptz)
RETURNS TABLE (result text, detail text) LANGUAGE plpgsql AS $$
DECLARE
    r enrollment_reservations%ROWTYPE;
    dev devices%ROWTYPE;
    tok enrollment_tokens%ROWTYPE;
BEGIN
    DELETE FROM enrollment_reservations WHERE id = p_reservation RETURNING * INTO r;
    IF NOT FOUND OR r.expires_at <= now() THEN
        RETURN QUERY SELECT 'expired', 'enrollment decision expired; try again'; RETURN;
    END IF;
    IF ql_key_compromised(r.spki_sha256) THEN
        RETURN QUERY SELECT 'forbidden', 'this key was revoked for keyCompromise'; RETURN;
    END IF;
    -- A session another enrollment consumed meanwhile refuses.
    IF r.attest_session IS NOT NULL AND NOT EXISTS (SELECT 1 FROM attest_sessions
            WHERE id = r.attest_session AND state = 'proven' FOR UPDATE) THEN
        RETURN QUERY SELECT 'forbidden', 'TPM attestation was used by another enrollment;'
            ' attest again'; RETURN;
    END IF;
    -- Locked, so a revocation waits for this commit or comes first.
    IF r.token_id IS NOT NULL THEN
        SELECT * INTO tok FROM enrollment_tokens
            WHERE id = r.token_id AND revoked_at IS NULL FOR UPDATE;
        IF NOT FOUND THEN
            RETURN QUERY SELECT 'forbidden', 'enrollment token revoked'; RETURN;
        END IF;
    END IF;
    IF r.old_serial IS NULL THEN
        SELECT * INTO dev FROM devices
            WHERE project_id = r.project_id AND device_id = r.device_id FOR UPDATE;
    ELSE
        SELECT d.* INTO dev FROM devices d JOIN certificates c ON c.device = d.id
            WHERE c.serial = r.old_serial FOR UPDATE OF d;
        IF EXISTS (SELECT 1 FROM certificates WHERE serial = r.old_serial
                AND revoked_at IS NOT NULL) THEN
            RETURN QUERY SELECT 'forbidden', 'client certificate is revoked'; RETURN;
        END IF;
        IF dev.id IS NULL THEN
            RETURN QUERY SELECT 'forbidden', 'device is gone'; RETURN;
        END IF;
    END IF;
    IF dev.status IN ('rejected', 'disabled', 'revoked')
            OR (r.old_serial IS NOT NULL AND dev.status = 'pending') THEN
        RETURN QUERY SELECT 'forbidden', 'device is ' || dev.status; RETURN;
    END IF;
    -- From here on nothing refuses.
    IF dev.id IS NULL THEN
        -- A first enrollment racing this one for the same new device may
        -- have inserted it since the lookup: then take that row.
        INSERT INTO devices (project_id, device_id, label, status, last_seen)
            VALUES (r.project_id, r.device_id, r.label, 'active', now())
            ON CONFLICT (project_id, device_id) DO NOTHING
            RETURNING * INTO dev;
        IF NOT FOUND THEN
            SELECT * INTO dev FROM devices
                WHERE project_id = r.project_id AND device_id = r.device_id FOR UPDATE;
            IF dev.status IN ('rejected', 'disabled', 'revoked') THEN
                RETURN QUERY SELECT 'forbidden', 'device is ' || dev.status; RETURN;
            END IF;
        END IF;
    END IF;
    IF r.attest_session IS NOT NULL THEN
        PERFORM ql_attest_take(r.attest_session, dev.id);
    END IF;
    IF r.token_id IS NOT NULL THEN
        UPDATE enrollment_tokens SET uses = uses + 1 WHERE id = tok.id;
    END IF;
    UPDATE devices SET status = 'active', last_seen = now(),
        label = coalesce(r.label, label) WHERE id = dev.id;
    INSERT INTO device_keys (device, spki_sha256) VALUES (dev.id, r.spki_sha256)
        ON CONFLICT DO NOTHING;
    INSERT INTO certificates (serial, ca_id, device, subject, spki_sha256,
            not_before, not_after, cert_der, replaces)
        VALUES (p_serial, r.ca_id, dev.id, p_subject, r.spki_sha256, p_not_before,
            p_not_after, p_cert, r.old_serial);
    IF r.old_serial IS NULL THEN
        PERFORM ql_audit('device:' || r.device_id, 'device.enroll', p_serial, 'ok',
            CASE WHEN tok.id IS NOT NULL THEN 'enrollment token ' || tok.id ELSE NULL END,
            r.project_id);
    ELSE
        PERFORM ql_audit('device:' || r.device_id, 'device.reenroll', p_serial, 'ok',
            'replaces ' || r.old_serial, r.project_id);
        PERFORM ql_cert_revoke(r.old_serial, 4::smallint, 'device:' || r.device_id,
            'reason superseded by ' || p_serial, r.project_id);
    END IF;
    RETURN QUERY SELECT 'issued', r.device_id;
END $$;
