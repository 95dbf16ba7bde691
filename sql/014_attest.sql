-- 014_attest.sql: TPM 2.0 attestation (issue 15): the tpm enrollment
-- policy, the project's TPM manufacturer CAs, attestation sessions (EK
-- credential activation and TPM2_Certify of the identity key, see
-- quarklink-attest(7)), what a device's attestation and quotes left, and
-- the enrollment decisions of 006 with tpm as a gate ANDed with the others.

ALTER TABLE projects
    ADD COLUMN policy_tpm boolean NOT NULL DEFAULT false,
    -- bit n: PCR n of the SHA-256 bank; 0: the project asks for no quotes.
    ADD COLUMN attest_pcrs integer NOT NULL DEFAULT 255
        CHECK (attest_pcrs >= 0 AND attest_pcrs < 16777216),
    ADD COLUMN attest_refuse_tampered boolean NOT NULL DEFAULT true;

-- Trusted TPM manufacturer CAs of one project (the installation's are
-- files, [attest] manufacturer_cas).
CREATE TABLE tpm_cas (
    id          bigserial PRIMARY KEY,
    project_id  bigint NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    cert_der    bytea NOT NULL,
    sha256      bytea NOT NULL,
    subject     text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (project_id, sha256)
);

-- One credential activation: made by the challenge, tried once by the
-- proof (state tried, whatever its outcome), proven for the identity key
-- the AK certified, and consumed by the enrollment that records the
-- certificate. Only the secret's SHA-256 is kept.
CREATE TABLE attest_sessions (
    id            bytea PRIMARY KEY CHECK (length(id) = 16),
    project_id    bigint NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    ek_cert       bytea NOT NULL,
    ek_sha256     bytea NOT NULL,
    ak_public     bytea NOT NULL,
    ak_name       bytea NOT NULL,
    secret_sha256 bytea NOT NULL,
    nonce         bytea NOT NULL CHECK (length(nonce) = 32),
    state         text NOT NULL DEFAULT 'issued'
        CHECK (state IN ('issued', 'tried', 'proven')),
    spki_sha256   bytea,
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    CHECK ((state = 'proven') = (spki_sha256 IS NOT NULL))
);
CREATE INDEX attest_sessions_expiry ON attest_sessions (expires_at);
CREATE INDEX attest_sessions_ek ON attest_sessions (ek_sha256);
CREATE INDEX attest_sessions_proven ON attest_sessions (project_id, spki_sha256)
    WHERE state = 'proven';

-- What a device's attestation left. PCR sets are jsonb objects
-- {"<pcr>": "<hex SHA-256 value>"}; att_spki_sha256 is the identity key the
-- AK certified, the only one re-enrollment may keep using.
ALTER TABLE devices
    ADD COLUMN ek_sha256 bytea,
    ADD COLUMN ek_cert bytea,
    ADD COLUMN ak_public bytea,
    ADD COLUMN ak_name bytea,
    ADD COLUMN att_spki_sha256 bytea,
    ADD COLUMN att_state text NOT NULL DEFAULT 'none'
        CHECK (att_state IN ('none', 'trusted', 'tampered')),
    ADD COLUMN attested_at timestamptz,
    ADD COLUMN last_quote_at timestamptz,
    ADD COLUMN pcr_reference jsonb,
    ADD COLUMN pcr_last jsonb,
    ADD COLUMN pcr_differ integer[] NOT NULL DEFAULT '{}';

-- The quote a device was asked for: one outstanding per device (a new
-- challenge replaces it), used once.
CREATE TABLE quote_nonces (
    device      bigint PRIMARY KEY REFERENCES devices(id) ON DELETE CASCADE,
    nonce       bytea NOT NULL CHECK (length(nonce) = 32),
    pcr_mask    integer NOT NULL,
    expires_at  timestamptz NOT NULL
);

-- A reservation made on a proven session consumes it when committed.
ALTER TABLE enrollment_reservations ADD COLUMN attest_session bytea;

-- The update API's answers (devcache) change with the attestation state
-- and the project's refuse_tampered: tell every node's cache.
DROP TRIGGER devices_deploy_notify ON devices;
CREATE TRIGGER devices_deploy_notify AFTER UPDATE OF status, tags, att_state OR DELETE
    ON devices FOR EACH ROW EXECUTE FUNCTION ql_devices_deploy_notify();
CREATE FUNCTION ql_projects_attest_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('ql_deploy', 'p ' || NEW.id);
    RETURN NULL;
END $$;
CREATE TRIGGER projects_attest_notify AFTER UPDATE OF attest_refuse_tampered
    ON projects FOR EACH ROW EXECUTE FUNCTION ql_projects_attest_notify();

-- A device as the API shows it: 004's columns, then its attestation.
CREATE OR REPLACE VIEW ql_devices_api AS
SELECT d.device_id, d.label, d.status, array_to_string(d.tags, chr(31)) AS tag_list,
    to_char(d.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS created_at,
    to_char(d.last_seen AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS last_seen,
    d.installed_version, c.serial AS cert_serial,
    to_char(c.not_after AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS cert_not_after,
    d.id, d.project_id, d.tags,
    d.att_state, encode(d.ek_sha256, 'hex') AS ek_sha256,
    encode(d.ak_name, 'hex') AS ak_name, ql_iso(d.attested_at) AS attested_at,
    ql_iso(d.last_quote_at) AS last_quote_at,
    array_to_string(d.pcr_differ, ',') AS pcr_differ
FROM devices d
LEFT JOIN LATERAL (
    SELECT c.serial, c.not_after FROM certificates c
    WHERE c.device = d.id AND c.kind = 'device' AND c.revoked_at IS NULL
      AND c.not_after > now()
    ORDER BY c.not_before DESC, c.serial DESC LIMIT 1) c ON true;

-- The refusal of a tampered device, in one place for every caller.
CREATE FUNCTION ql_attest_refused(p_state text, p_refuse boolean) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT p_state = 'tampered' AND p_refuse
$$;

-- Challenge: a new session, after dropping expired ones. An EK holds at
-- most 8 live sessions, so one genuine TPM cannot fill the table.
-- result: ok | busy
CREATE FUNCTION ql_attest_session_new(p_project bigint, p_id bytea, p_ek_cert bytea,
        p_ak_public bytea, p_ak_name bytea, p_secret_sha256 bytea, p_nonce bytea,
        p_ttl integer)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    ek bytea := sha256(p_ek_cert);
BEGIN
    DELETE FROM attest_sessions WHERE expires_at <= now();
    IF (SELECT count(*) FROM attest_sessions WHERE ek_sha256 = ek) >= 8 THEN
        RETURN 'busy';
    END IF;
    INSERT INTO attest_sessions (id, project_id, ek_cert, ek_sha256, ak_public,
            ak_name, secret_sha256, nonce, expires_at)
        VALUES (p_id, p_project, p_ek_cert, ek, p_ak_public, p_ak_name,
            p_secret_sha256, p_nonce, now() + make_interval(secs => p_ttl));
    RETURN 'ok';
END $$;

-- Proof, step 1: the one try of a live, unused session of the project.
-- Rows: secret_sha256, nonce, ak_public (none: unknown, used or expired).
CREATE FUNCTION ql_attest_session_try(p_project text, p_id bytea)
RETURNS TABLE (secret_sha256 bytea, nonce bytea, ak_public bytea)
LANGUAGE sql AS $$
    UPDATE attest_sessions s SET state = 'tried'
        FROM projects p
        WHERE s.id = p_id AND p.name = p_project AND s.project_id = p.id
          AND s.state = 'issued' AND s.expires_at > now()
        RETURNING s.secret_sha256, s.nonce, s.ak_public
$$;

-- Proof, step 2: proven for the identity key, for p_ttl seconds.
CREATE FUNCTION ql_attest_session_prove(p_id bytea, p_spki bytea, p_ttl integer)
RETURNS boolean LANGUAGE sql AS $$
    WITH s AS (UPDATE attest_sessions SET state = 'proven', spki_sha256 = p_spki,
            expires_at = now() + make_interval(secs => p_ttl)
        WHERE id = p_id AND state = 'tried' RETURNING 1)
    SELECT EXISTS (SELECT 1 FROM s)
$$;

-- Copy a proven session onto a device row, consume it, audit it.
CREATE FUNCTION ql_attest_take(p_session bytea, p_device bigint) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    s attest_sessions%ROWTYPE;
    d devices%ROWTYPE;
BEGIN
    DELETE FROM attest_sessions WHERE id = p_session AND state = 'proven'
        RETURNING * INTO s;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    UPDATE devices SET ek_sha256 = s.ek_sha256, ek_cert = s.ek_cert,
            ak_public = s.ak_public, ak_name = s.ak_name,
            att_spki_sha256 = s.spki_sha256, attested_at = now(),
            att_state = CASE WHEN att_state = 'tampered' THEN 'tampered' ELSE 'trusted' END,
            -- A new AK's quotes start a new reference set.
            pcr_reference = CASE WHEN ak_name = s.ak_name THEN pcr_reference END,
            pcr_last = CASE WHEN ak_name = s.ak_name THEN pcr_last END
        WHERE id = p_device RETURNING * INTO d;
    PERFORM ql_audit('device:' || d.device_id, 'device.attested', d.device_id, 'ok',
        'EK certificate sha256 ' || encode(s.ek_sha256, 'hex') || ', AK name '
        || encode(s.ak_name, 'hex'), d.project_id);
    RETURN true;
END $$;

-- First enrollment, step 1, as in 006 with the tpm policy: a gate that a
-- proven, unexpired session of this project for this key (or a device row
-- already attested with it: the pending approval case) opens. Alone it
-- authorises; with other policies on they must authorise too.
CREATE OR REPLACE FUNCTION ql_enroll_decide(p_project bigint, p_device_id text, p_label text,
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
    session bytea;
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
    IF proj.policy_tpm THEN
        -- The newest proven session: locked, so two enrollments on one
        -- session are decided in turn (the commit consumes it).
        SELECT s.id INTO session FROM attest_sessions s
            WHERE s.project_id = proj.id AND s.spki_sha256 = p_spki
              AND s.state = 'proven' AND s.expires_at > now()
            ORDER BY s.expires_at DESC LIMIT 1 FOR UPDATE;
        IF session IS NULL AND (dev.id IS NULL OR dev.att_spki_sha256 IS NULL
                OR dev.att_spki_sha256 <> p_spki) THEN
            RETURN QUERY SELECT 'forbidden', 'no TPM attestation for this key',
                NULL::bigint, NULL::bigint; RETURN;
        END IF;
        IF dev.id IS NOT NULL AND ql_attest_refused(dev.att_state, proj.attest_refuse_tampered) THEN
            RETURN QUERY SELECT 'forbidden', 'device failed attestation: PCR values differ'
                ' from the reference; an admin must accept them', NULL::bigint, NULL::bigint;
            RETURN;
        END IF;
        ok := NOT (proj.policy_token OR proj.policy_allowlist OR proj.policy_approval);
    END IF;
    -- A project without the token policy ignores credentials it never gave.
    IF NOT proj.policy_token THEN
        p_token_hash := NULL;
    END IF;
    IF NOT ok AND p_token_hash IS NOT NULL THEN
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
                VALUES (proj.id, p_device_id, p_label, 'pending', now())
                RETURNING * INTO dev;
            PERFORM ql_audit('device:' || p_device_id, 'device.pending', p_device_id, 'ok',
                CASE WHEN p_label IS NULL THEN NULL ELSE 'label ' || p_label END, proj.id);
            -- The attestation waits for the admin on the pending row.
            IF session IS NOT NULL THEN
                PERFORM ql_attest_take(session, dev.id);
            END IF;
            RETURN QUERY SELECT 'pending', 'waiting for approval', NULL::bigint, NULL::bigint; RETURN;
        ELSIF dev.status = 'pending' THEN
            UPDATE devices SET last_seen = now() WHERE id = dev.id;
            IF session IS NOT NULL THEN
                PERFORM ql_attest_take(session, dev.id);
            END IF;
            RETURN QUERY SELECT 'pending', 'waiting for approval', NULL::bigint, NULL::bigint; RETURN;
        END IF;
        ok := dev.status IN ('approved', 'active');
    END IF;
    IF NOT ok THEN
        RETURN QUERY SELECT 'denied', coalesce(why, 'enrollment not authorised'),
            NULL::bigint, NULL::bigint; RETURN;
    END IF;
    INSERT INTO enrollment_reservations (project_id, ca_id, device_id, label, token_id,
            spki_sha256, attest_session)
        VALUES (proj.id, ca, p_device_id, p_label, used_token, p_spki, session)
        RETURNING id INTO rid;
    RETURN QUERY SELECT 'reserved', NULL::text, rid, ca;
END $$;

-- Re-enrollment, step 1, as in 006: a tampered device is refused when its
-- project says so, and a tpm project's device keeps its attested key.
CREATE OR REPLACE FUNCTION ql_reenroll_decide(p_old_serial text, p_cert_sha256 bytea, p_spki bytea)
RETURNS TABLE (result text, detail text, reservation bigint, ca_id bigint, device_id text)
LANGUAGE plpgsql AS $$
DECLARE
    old certificates%ROWTYPE;
    dev devices%ROWTYPE;
    proj projects%ROWTYPE;
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
    SELECT * INTO proj FROM projects WHERE id = dev.project_id;
    IF ql_attest_refused(dev.att_state, proj.attest_refuse_tampered) THEN
        RETURN QUERY SELECT 'forbidden', 'device failed attestation: PCR values differ'
            ' from the reference; an admin must accept them',
            NULL::bigint, NULL::bigint, NULL::text; RETURN;
    END IF;
    IF proj.policy_tpm AND dev.att_spki_sha256 IS NULL THEN
        RETURN QUERY SELECT 'forbidden', 'device has no TPM attestation; enroll again'
            ' with attestation', NULL::bigint, NULL::bigint, NULL::text; RETURN;
    END IF;
    IF proj.policy_tpm AND dev.att_spki_sha256 <> p_spki THEN
        RETURN QUERY SELECT 'forbidden', 'the CSR key is not the TPM-attested key',
            NULL::bigint, NULL::bigint, NULL::text; RETURN;
    END IF;
    INSERT INTO enrollment_reservations (project_id, ca_id, device_id, old_serial, spki_sha256)
        VALUES (dev.project_id, old.ca_id, dev.device_id, p_old_serial, p_spki)
        RETURNING id INTO rid;
    RETURN QUERY SELECT 'reserved', NULL::text, rid, old.ca_id, dev.device_id;
END $$;

-- Step 3 as in 006, and a reservation made on a proven session consumes
-- it and writes the attestation onto the device (audited device.attested);
-- a session another enrollment consumed meanwhile refuses.
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
    -- Locked before anything is written: a session another enrollment
    -- consumed meanwhile refuses with nothing recorded.
    IF r.attest_session IS NOT NULL AND NOT EXISTS (SELECT 1 FROM attest_sessions
            WHERE id = r.attest_session AND state = 'proven' FOR UPDATE) THEN
        RETURN QUERY SELECT 'forbidden', 'TPM attestation was used by another enrollment;'
            ' attest again'; RETURN;
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
    IF r.attest_session IS NOT NULL THEN
        PERFORM ql_attest_take(r.attest_session, dev.id);
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
        PERFORM ql_cert_revoke(r.old_serial, 4::smallint, 'device:' || r.device_id,
            'reason superseded by ' || p_serial, r.project_id);
    END IF;
    RETURN QUERY SELECT 'issued', r.device_id;
END $$;

-- Creation with the tpm policy too (pki_project.c): 002's function, then
-- the flag, in one transaction.
CREATE FUNCTION ql_create_project(p_name text, p_token boolean, p_allowlist boolean,
        p_approval boolean, p_tpm boolean, p_validity integer,
        p_ca_label text, p_ca_cert bytea, p_ca_subject text, p_ca_not_after timestamptz,
        p_sign_label text, p_sign_cert bytea, p_sign_subject text, p_sign_not_after timestamptz,
        p_actor text)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    pid bigint;
BEGIN
    pid := ql_create_project(p_name, p_token, p_allowlist, p_approval, p_validity,
        p_ca_label, p_ca_cert, p_ca_subject, p_ca_not_after,
        p_sign_label, p_sign_cert, p_sign_subject, p_sign_not_after, p_actor);
    UPDATE projects SET policy_tpm = p_tpm WHERE id = pid;
    RETURN pid;
END $$;

-- As in 011, and a tampered device of a project that refuses them gets
-- no update (trust 'tampered').
CREATE OR REPLACE FUNCTION ql_device_update(p_ca bigint, p_serial text)
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
                WHEN ql_attest_refused(d.att_state, p.attest_refuse_tampered) THEN 'tampered'
                ELSE 'ok' END, d.id, d.project_id
        INTO t, dev, proj
        FROM certificates c LEFT JOIN devices d ON d.id = c.device
        LEFT JOIN projects p ON p.id = d.project_id
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

-- Quote challenge for the device of a certificate: the project's PCR mask
-- when it asks for quotes and the device has an AK (the nonce replaces
-- any outstanding one), else NULL.
CREATE FUNCTION ql_quote_challenge(p_ca bigint, p_serial text, p_nonce bytea,
        p_ttl integer)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    dev bigint;
    mask integer;
BEGIN
    SELECT d.id, p.attest_pcrs INTO dev, mask
        FROM certificates c JOIN devices d ON d.id = c.device
        JOIN projects p ON p.id = d.project_id
        WHERE c.serial = p_serial AND c.ca_id = p_ca AND c.kind = 'device'
          AND d.ak_public IS NOT NULL;
    IF dev IS NULL OR mask = 0 THEN
        RETURN NULL;
    END IF;
    INSERT INTO quote_nonces (device, nonce, pcr_mask, expires_at)
        VALUES (dev, p_nonce, mask, now() + make_interval(secs => p_ttl))
        ON CONFLICT (device) DO UPDATE SET nonce = EXCLUDED.nonce,
            pcr_mask = EXCLUDED.pcr_mask, expires_at = EXCLUDED.expires_at;
    RETURN mask;
END $$;

-- What a quote is checked against: the device's AK and the mask asked
-- with this live nonce. No row: nonce unknown, used or expired.
CREATE FUNCTION ql_quote_get(p_ca bigint, p_serial text, p_nonce bytea)
RETURNS TABLE (device bigint, ak_public bytea, pcr_mask integer)
LANGUAGE sql STABLE AS $$
    SELECT d.id, d.ak_public, q.pcr_mask
        FROM certificates c JOIN devices d ON d.id = c.device
        JOIN quote_nonces q ON q.device = d.id
        WHERE c.serial = p_serial AND c.ca_id = p_ca AND c.kind = 'device'
          AND q.nonce = p_nonce AND q.expires_at > now() AND d.ak_public IS NOT NULL
$$;

-- A verified quote's PCR values ({"<pcr>": "<hex>"}): the nonce is used
-- up here (none left: 'stale', nothing written). The first good quote
-- records the reference; later ones are compared PCR by PCR, PCRs new to
-- the reference join it. A difference marks the device tampered until an
-- admin accepts. result: state, reference recorded|matched|differs,
-- differ "n,m".
CREATE FUNCTION ql_quote_record(p_device bigint, p_nonce bytea, p_values jsonb)
RETURNS TABLE (state text, reference text, differ text)
LANGUAGE plpgsql AS $$
DECLARE
    d devices%ROWTYPE;
    diff integer[] := '{}';
    word text := 'recorded';
    to_state text;
BEGIN
    DELETE FROM quote_nonces q WHERE q.device = p_device AND q.nonce = p_nonce
        AND q.expires_at > now();
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'stale'::text, NULL::text, NULL::text; RETURN;
    END IF;
    SELECT * INTO d FROM devices WHERE id = p_device FOR UPDATE;
    IF d.pcr_reference IS NOT NULL THEN
        diff := ARRAY(SELECT v.k::integer FROM jsonb_each_text(p_values) v(k, val)
            WHERE d.pcr_reference ? v.k AND d.pcr_reference->>v.k <> v.val
            ORDER BY v.k::integer);
        word := CASE WHEN cardinality(diff) = 0 THEN 'matched' ELSE 'differs' END;
    END IF;
    to_state := CASE WHEN cardinality(diff) > 0 OR d.att_state = 'tampered'
        THEN 'tampered' ELSE 'trusted' END;
    UPDATE devices SET pcr_last = p_values, last_quote_at = now(),
            pcr_reference = p_values || coalesce(d.pcr_reference, '{}'::jsonb),
            att_state = to_state,
            pcr_differ = CASE WHEN cardinality(diff) > 0 THEN diff ELSE pcr_differ END
        WHERE id = d.id;
    IF word = 'recorded' THEN
        PERFORM ql_audit('device:' || d.device_id, 'device.pcr_reference', d.device_id,
            'ok', 'PCRs ' || (SELECT string_agg(k, ',' ORDER BY k::integer)
                FROM jsonb_object_keys(p_values) k) || ' recorded', d.project_id);
    END IF;
    IF cardinality(diff) > 0 AND d.att_state <> 'tampered' THEN
        PERFORM ql_audit('device:' || d.device_id, 'device.tampered', d.device_id, 'ok',
            'PCRs ' || array_to_string(diff, ',') || ' differ from the reference',
            d.project_id);
    END IF;
    RETURN QUERY SELECT to_state, word, array_to_string(diff, ',');
END $$;

-- An admin accepts a tampered device's last quoted values as its
-- reference. result: ok | conflict (not tampered) | not_found, then the
-- device row.
CREATE FUNCTION ql_attest_accept(p_project bigint, p_device text, p_actor text)
RETURNS TABLE (result text, dev ql_devices_api) LANGUAGE plpgsql AS $$
DECLARE
    d devices%ROWTYPE;
BEGIN
    SELECT * INTO d FROM devices
        WHERE project_id = p_project AND device_id = p_device FOR UPDATE;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'not_found'::text, NULL::ql_devices_api; RETURN;
    END IF;
    IF d.att_state <> 'tampered' THEN
        RETURN QUERY SELECT 'conflict'::text, v FROM ql_devices_api v WHERE v.id = d.id;
        RETURN;
    END IF;
    UPDATE devices SET pcr_reference = coalesce(d.pcr_last, d.pcr_reference),
        att_state = 'trusted', pcr_differ = '{}' WHERE id = d.id;
    PERFORM ql_audit(p_actor, 'device.attestation_accepted', d.device_id, 'ok',
        'PCRs ' || array_to_string(d.pcr_differ, ',') || ': last quoted values accepted',
        p_project);
    RETURN QUERY SELECT 'ok'::text, v FROM ql_devices_api v WHERE v.id = d.id;
END $$;

-- A project's TPM manufacturer CA (parsed and checked by the daemon).
-- result: ok | exists | full (64 per project), then the row.
CREATE FUNCTION ql_tpm_ca_add(p_project bigint, p_der bytea, p_subject text, p_actor text)
RETURNS TABLE (result text, id bigint, subject text, sha256 text, created_at text)
LANGUAGE plpgsql AS $$
DECLARE
    t tpm_cas%ROWTYPE;
BEGIN
    -- Serialises adds to one project, so the bound holds.
    PERFORM 1 FROM projects WHERE projects.id = p_project FOR UPDATE;
    IF EXISTS (SELECT 1 FROM tpm_cas c WHERE c.project_id = p_project
            AND c.sha256 = sha256(p_der)) THEN
        RETURN QUERY SELECT 'exists'::text, NULL::bigint, NULL::text, NULL::text, NULL::text;
        RETURN;
    END IF;
    IF (SELECT count(*) FROM tpm_cas c WHERE c.project_id = p_project) >= 64 THEN
        RETURN QUERY SELECT 'full'::text, NULL::bigint, NULL::text, NULL::text, NULL::text;
        RETURN;
    END IF;
    INSERT INTO tpm_cas (project_id, cert_der, sha256, subject)
        VALUES (p_project, p_der, sha256(p_der), p_subject) RETURNING * INTO t;
    PERFORM ql_audit(p_actor, 'tpm_ca.add', t.id::text, 'ok',
        'sha256 ' || encode(t.sha256, 'hex') || ' ' || t.subject, p_project);
    RETURN QUERY SELECT 'ok'::text, t.id, t.subject, encode(t.sha256, 'hex'),
        ql_iso(t.created_at);
END $$;
