-- 006_enroll_decide.sql: enrollment decides before anything is signed,
-- revocation is final for a key, and projects are created and deleted
-- without leaving token keys behind (issue 9, findings 2, 3, 5 and 6).

-- A revoked current certificate blocks its device until an admin
-- approves (or allows) it again.
ALTER TABLE devices DROP CONSTRAINT devices_status_check;
ALTER TABLE devices ADD CONSTRAINT devices_status_check
    CHECK (status IN ('pending', 'approved', 'active', 'rejected', 'disabled', 'revoked'));

-- Keys revoked for keyCompromise (reason 1): never certified again, in any
-- project. A table of its own so that deleting a device, its certificates
-- or its project cannot forget a compromise.
CREATE TABLE compromised_keys (
    spki_sha256 bytea PRIMARY KEY,
    serial      text NOT NULL,
    revoked_at  timestamptz NOT NULL
);

-- The certificate a re-enrollment replaced (revoked as superseded).
ALTER TABLE certificates ADD COLUMN replaces text;

-- decide + reserve, then sign, then commit: a reservation is the policy's
-- yes, held while the certificate is signed. One that is never committed
-- (the daemon died while signing) expires: until then it holds its token
-- use, afterwards it counts for nothing and the next decision deletes it.
CREATE TABLE enrollment_reservations (
    id          bigserial PRIMARY KEY,
    project_id  bigint NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    ca_id       bigint NOT NULL REFERENCES cas(id) ON DELETE CASCADE,
    device_id   text NOT NULL,
    label       text,
    token_id    bigint REFERENCES enrollment_tokens(id) ON DELETE CASCADE,
    old_serial  text,
    spki_sha256 bytea NOT NULL,
    expires_at  timestamptz NOT NULL DEFAULT now() + interval '5 minutes'
);
CREATE INDEX enrollment_reservations_token ON enrollment_reservations (token_id)
    WHERE token_id IS NOT NULL;
CREATE INDEX enrollment_reservations_expiry ON enrollment_reservations (expires_at);

-- On revocation: remember a compromised key; block the device when the
-- revoked certificate is its current (newest) one.
CREATE FUNCTION ql_certificates_revoked() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.revoked_at IS NULL THEN
        RETURN NEW;
    END IF;
    IF NEW.revocation_reason = 1 THEN
        INSERT INTO compromised_keys (spki_sha256, serial, revoked_at)
            VALUES (NEW.spki_sha256, NEW.serial, NEW.revoked_at) ON CONFLICT DO NOTHING;
    END IF;
    IF NEW.device IS NOT NULL AND NEW.kind = 'device' AND OLD.revoked_at IS NULL
            AND NOT EXISTS (SELECT 1 FROM certificates c WHERE c.device = NEW.device
                AND c.kind = 'device' AND (c.created_at, c.serial) > (NEW.created_at, NEW.serial)) THEN
        UPDATE devices SET status = 'revoked'
            WHERE id = NEW.device AND status IN ('active', 'approved');
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER certificates_revoked_device AFTER UPDATE OF revoked_at, revocation_reason
    ON certificates FOR EACH ROW EXECUTE FUNCTION ql_certificates_revoked();

-- The refusal every decision makes first.
CREATE FUNCTION ql_key_compromised(p_spki bytea) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT EXISTS (SELECT 1 FROM compromised_keys WHERE spki_sha256 = p_spki)
$$;

-- First enrollment, step 1: the project's policy decides; a yes reserves
-- (token use held, nothing signed yet). A refusal writes nothing, except
-- the pending device that manual approval asks for, with its audit row.
-- result: reserved (reservation, ca_id) | pending | denied | forbidden |
-- not_found.
CREATE FUNCTION ql_enroll_decide(p_project bigint, p_device_id text, p_label text,
        p_token_hash bytea, p_spki bytea)
RETURNS TABLE (result text, detail text, reservation bigint, ca_id bigint)
LANGUAGE plpgsql AS $$
DECLARE
    proj projects%ROWTYPE;
    dev devices%ROWTYPE;
    tok enrollment_tokens%ROWTYPE;
    used_token bigint;
    ca bigint;
    rid bigint;
    ok boolean := false;
    why text := 'enrollment not authorised';
BEGIN
    DELETE FROM enrollment_reservations WHERE expires_at <= now();
    SELECT * INTO proj FROM projects WHERE id = p_project;
    SELECT id INTO ca FROM cas WHERE project_id = p_project AND kind = 'issuing';
    IF proj.id IS NULL OR ca IS NULL THEN
        RETURN QUERY SELECT 'not_found', 'unknown project', NULL::bigint, NULL::bigint; RETURN;
    END IF;
    IF ql_key_compromised(p_spki) THEN
        RETURN QUERY SELECT 'forbidden', 'this key was revoked for keyCompromise',
            NULL::bigint, NULL::bigint; RETURN;
    END IF;
    SELECT * INTO dev FROM devices
        WHERE project_id = proj.id AND device_id = p_device_id FOR UPDATE;
    IF FOUND AND dev.status IN ('rejected', 'disabled') THEN
        RETURN QUERY SELECT 'forbidden', 'device is ' || dev.status, NULL::bigint, NULL::bigint; RETURN;
    END IF;
    IF FOUND AND dev.status = 'revoked' THEN
        RETURN QUERY SELECT 'forbidden',
            'device certificate was revoked; an admin must approve the device again',
            NULL::bigint, NULL::bigint; RETURN;
    END IF;
    -- A project without the token policy ignores credentials it never gave.
    IF NOT proj.policy_token THEN
        p_token_hash := NULL;
    END IF;
    IF p_token_hash IS NOT NULL THEN
        -- Locked: concurrent decisions on one token count its uses in turn.
        SELECT * INTO tok FROM enrollment_tokens
            WHERE project_id = proj.id AND token_hash = p_token_hash FOR UPDATE;
        why := CASE
            WHEN NOT FOUND THEN 'invalid enrollment token'
            WHEN tok.revoked_at IS NOT NULL THEN 'enrollment token revoked'
            WHEN tok.expires_at <= now() THEN 'enrollment token expired'
            WHEN tok.uses + (SELECT count(*) FROM enrollment_reservations r
                    WHERE r.token_id = tok.id) >= tok.max_uses
                THEN 'enrollment token used up'
            END;
        ok := why IS NULL;
        IF ok THEN
            used_token := tok.id;
        END IF;
    END IF;
    IF NOT ok AND proj.policy_allowlist THEN
        ok := EXISTS (SELECT 1 FROM allowlist
                      WHERE project_id = proj.id AND device_id = p_device_id);
        IF NOT ok AND p_token_hash IS NULL THEN
            why := 'device is not on the allowlist';
        END IF;
    ELSIF NOT ok AND NOT proj.policy_approval AND p_token_hash IS NULL THEN
        why := 'enrollment token required';
    END IF;
    IF NOT ok AND proj.policy_approval AND p_token_hash IS NULL THEN
        IF dev.id IS NULL THEN
            INSERT INTO devices (project_id, device_id, label, status, last_seen)
                VALUES (proj.id, p_device_id, p_label, 'pending', now());
            PERFORM ql_audit('device:' || p_device_id, 'device.pending', p_device_id, 'ok',
                CASE WHEN p_label IS NULL THEN NULL ELSE 'label ' || p_label END, proj.id);
            RETURN QUERY SELECT 'pending', 'waiting for approval', NULL::bigint, NULL::bigint; RETURN;
        ELSIF dev.status = 'pending' THEN
            UPDATE devices SET last_seen = now() WHERE id = dev.id;
            RETURN QUERY SELECT 'pending', 'waiting for approval', NULL::bigint, NULL::bigint; RETURN;
        END IF;
        ok := dev.status IN ('approved', 'active');
    END IF;
    IF NOT ok THEN
        RETURN QUERY SELECT 'denied', coalesce(why, 'enrollment not authorised'),
            NULL::bigint, NULL::bigint; RETURN;
    END IF;
    INSERT INTO enrollment_reservations (project_id, ca_id, device_id, label, token_id, spki_sha256)
        VALUES (proj.id, ca, p_device_id, p_label, used_token, p_spki) RETURNING id INTO rid;
    RETURN QUERY SELECT 'reserved', NULL::text, rid, ca;
END $$;

-- Re-enrollment, step 1: the presented certificate (serial and SHA-256 of
-- its DER, so only the exact certificate we stored counts) names the
-- device; its project, CA and device ID come from here, never from the
-- URL or the subject, so a renamed project keeps re-enrolling. result:
-- reserved (reservation, ca_id, device_id) | forbidden.
CREATE FUNCTION ql_reenroll_decide(p_old_serial text, p_cert_sha256 bytea, p_spki bytea)
RETURNS TABLE (result text, detail text, reservation bigint, ca_id bigint, device_id text)
LANGUAGE plpgsql AS $$
DECLARE
    old certificates%ROWTYPE;
    dev devices%ROWTYPE;
    rid bigint;
BEGIN
    DELETE FROM enrollment_reservations WHERE expires_at <= now();
    SELECT c.* INTO old FROM certificates c
        WHERE c.serial = p_old_serial AND c.kind = 'device' AND sha256(c.cert_der) = p_cert_sha256;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'forbidden', 'client certificate is not a device certificate of this CA',
            NULL::bigint, NULL::bigint, NULL::text; RETURN;
    END IF;
    IF ql_key_compromised(p_spki) THEN
        RETURN QUERY SELECT 'forbidden', 'this key was revoked for keyCompromise',
            NULL::bigint, NULL::bigint, NULL::text; RETURN;
    END IF;
    IF old.revoked_at IS NOT NULL THEN
        RETURN QUERY SELECT 'forbidden', 'client certificate is revoked',
            NULL::bigint, NULL::bigint, NULL::text; RETURN;
    END IF;
    IF old.not_after <= now() THEN
        RETURN QUERY SELECT 'forbidden', 'client certificate has expired',
            NULL::bigint, NULL::bigint, NULL::text; RETURN;
    END IF;
    SELECT * INTO dev FROM devices WHERE id = old.device FOR UPDATE;
    IF NOT FOUND OR dev.status NOT IN ('active', 'approved') THEN
        RETURN QUERY SELECT 'forbidden', 'device is ' || coalesce(dev.status, 'deleted'),
            NULL::bigint, NULL::bigint, NULL::text; RETURN;
    END IF;
    INSERT INTO enrollment_reservations (project_id, ca_id, device_id, old_serial, spki_sha256)
        VALUES (dev.project_id, old.ca_id, dev.device_id, p_old_serial, p_spki)
        RETURNING id INTO rid;
    RETURN QUERY SELECT 'reserved', NULL::text, rid, old.ca_id, dev.device_id;
END $$;

-- The one-round-trip functions of 002 are replaced by the two steps.
DROP FUNCTION ql_enroll(text, text, text, bytea, bytea, text, bytea, text,
    timestamptz, timestamptz);
DROP FUNCTION ql_reenroll(text, text, bytea, text, bytea, text, timestamptz, timestamptz);

-- Step 3: record what was signed under a reservation, re-checking what
-- may have changed while it was signed. A unique violation (serial
-- collision) rolls everything back and leaves the reservation for the
-- next signature. Re-enrollment revokes the certificate it replaces
-- (reason superseded, 4) after the new one is in: one valid certificate
-- per device. result: issued | expired | forbidden.
CREATE FUNCTION ql_enroll_commit(p_reservation bigint, p_serial text, p_cert bytea,
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
    IF r.old_serial IS NULL THEN
        INSERT INTO devices (project_id, device_id, label, status, last_seen)
            VALUES (r.project_id, r.device_id, r.label, 'active', now())
            ON CONFLICT (project_id, device_id) DO UPDATE SET last_seen = now()
            RETURNING * INTO dev;
    ELSE
        SELECT d.* INTO dev FROM devices d JOIN certificates c ON c.device = d.id
            WHERE c.serial = r.old_serial FOR UPDATE OF d;
        IF EXISTS (SELECT 1 FROM certificates WHERE serial = r.old_serial
                AND revoked_at IS NOT NULL) THEN
            RETURN QUERY SELECT 'forbidden', 'client certificate is revoked'; RETURN;
        END IF;
    END IF;
    IF dev.id IS NULL OR dev.status IN ('rejected', 'disabled', 'revoked')
            OR (r.old_serial IS NOT NULL AND dev.status = 'pending') THEN
        RETURN QUERY SELECT 'forbidden', 'device is ' || coalesce(dev.status, 'gone'); RETURN;
    END IF;
    IF r.token_id IS NOT NULL THEN
        UPDATE enrollment_tokens SET uses = uses + 1
            WHERE id = r.token_id AND revoked_at IS NULL RETURNING * INTO tok;
        IF NOT FOUND THEN
            RETURN QUERY SELECT 'forbidden', 'enrollment token revoked'; RETURN;
        END IF;
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
        UPDATE certificates SET revoked_at = now(), revocation_reason = 4
            WHERE serial = r.old_serial AND revoked_at IS NULL;
        PERFORM ql_audit('device:' || r.device_id, 'certificate.revoke', r.old_serial, 'ok',
            'reason superseded by ' || p_serial, r.project_id);
    END IF;
    RETURN QUERY SELECT 'issued', r.device_id;
END $$;

-- approve also lifts the block of a revoked device (re-approval); enable
-- of a disabled device whose current certificate is revoked leaves it
-- blocked. Otherwise as in 004.
CREATE OR REPLACE FUNCTION ql_device_set_status(p_project bigint, p_device text,
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
        WHEN p_action = 'approve' AND d.status IN ('pending', 'revoked') THEN 'approved'
        WHEN p_action = 'reject' AND d.status = 'pending' THEN 'rejected'
        WHEN p_action = 'disable' AND d.status NOT IN ('rejected', 'disabled')
            THEN 'disabled'
        WHEN p_action = 'enable' AND d.status = 'disabled' THEN
            CASE WHEN EXISTS (SELECT 1 FROM certificates c
                    WHERE c.device = d.id AND c.kind = 'device'
                      AND c.revoked_at IS NULL AND c.not_after > now())
                THEN 'active'
                WHEN (SELECT c.revoked_at IS NOT NULL FROM certificates c
                    WHERE c.device = d.id AND c.kind = 'device'
                    ORDER BY c.created_at DESC, c.serial DESC LIMIT 1)
                THEN 'revoked' ELSE 'approved' END
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

-- Allowing a device again (re-allow) lifts the block of a revoked device
-- of the project, audited per device. Otherwise as in 005.
CREATE OR REPLACE FUNCTION ql_allowlist_add(p_project bigint, p_ids text[], p_actor text)
RETURNS TABLE (added bigint, already_present bigint)
LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
    total bigint := coalesce(cardinality(p_ids), 0);
    d text;
BEGIN
    WITH i AS (
        INSERT INTO allowlist (project_id, device_id)
            SELECT p_project, x FROM unnest(p_ids) AS x
            ON CONFLICT DO NOTHING RETURNING 1)
    SELECT count(*) INTO n FROM i;
    PERFORM ql_audit(p_actor, 'allowlist.add', NULL, 'ok',
        format('%s sent, %s added, %s already present', total, n, total - n),
        p_project);
    FOR d IN UPDATE devices SET status = 'approved'
            WHERE project_id = p_project AND device_id = ANY(p_ids) AND status = 'revoked'
            RETURNING device_id LOOP
        PERFORM ql_audit(p_actor, 'device.approve', d, 'ok',
            'revoked -> approved (allowed again)', p_project);
    END LOOP;
    RETURN QUERY SELECT n, total - n;
END $$;

-- Deleting a device also removes its allowlist entry: a deleted device
-- must not come back on an old permission. Otherwise as in 004.
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
    FOR s IN UPDATE certificates SET revoked_at = now(), revocation_reason = 5
            WHERE device = d.id AND revoked_at IS NULL RETURNING serial LOOP
        PERFORM ql_audit(p_actor, 'certificate.revoke', s, 'ok',
            'reason cessationOfOperation: device ' || d.device_id || ' deleted',
            p_project);
        n := n + 1;
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
