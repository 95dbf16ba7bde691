-- 002_ca.sql: projects, CAs, devices, certificates, enrollment policy.
-- Multi-step business operations are SQL functions so that one round trip
-- is one transaction (design.md, "Process model").

-- Append-only, hash-chained: each row stores the previous row's hash and
-- its own, so a changed or deleted row breaks the chain (ql_audit_verify).
CREATE TABLE audit_log (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor       text NOT NULL,
    action      text NOT NULL,
    object      text,
    result      text NOT NULL,
    detail      text,
    project_id  bigint,
    prev_hash   bytea NOT NULL,
    hash        bytea NOT NULL
);
CREATE INDEX audit_log_project ON audit_log (project_id, id);

CREATE FUNCTION ql_audit_hash(p_prev bytea, p_id bigint, p_at timestamptz,
        p_actor text, p_action text, p_object text, p_result text,
        p_detail text, p_project bigint)
RETURNS bytea LANGUAGE sql STABLE AS $$
    SELECT sha256(p_prev || convert_to(concat_ws(chr(31), p_id::text,
        to_char(p_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US'),
        p_actor, p_action, coalesce(p_object, ''), p_result,
        coalesce(p_detail, ''), coalesce(p_project::text, '')), 'UTF8'))
$$;

CREATE FUNCTION ql_audit(p_actor text, p_action text, p_object text,
        p_result text, p_detail text, p_project bigint)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    prev bytea;
    rid bigint;
    ts timestamptz := clock_timestamp();
BEGIN
    -- One appender at a time, or two rows would chain to the same parent.
    PERFORM pg_advisory_xact_lock(7166210932);
    SELECT hash INTO prev FROM audit_log ORDER BY id DESC LIMIT 1;
    prev := coalesce(prev, '\x'::bytea);
    rid := nextval('audit_log_id_seq');
    INSERT INTO audit_log (id, at, actor, action, object, result, detail,
            project_id, prev_hash, hash)
        VALUES (rid, ts, p_actor, p_action, p_object, p_result, p_detail,
            p_project, prev, ql_audit_hash(prev, rid, ts, p_actor, p_action,
            p_object, p_result, p_detail, p_project));
    RETURN rid;
END $$;

-- The first row whose link or content does not check out, or NULL.
CREATE FUNCTION ql_audit_verify() RETURNS TABLE (rows bigint, broken_id bigint)
LANGUAGE sql STABLE AS $$
    WITH c AS (
        SELECT id, hash, prev_hash,
            lag(hash) OVER (ORDER BY id) AS expect_prev,
            ql_audit_hash(prev_hash, id, at, actor, action, object, result,
                detail, project_id) AS expect_hash
        FROM audit_log)
    SELECT (SELECT count(*) FROM audit_log),
        (SELECT min(id) FROM c WHERE hash <> expect_hash
            OR prev_hash <> coalesce(expect_prev, '\x'::bytea))
$$;

CREATE TABLE projects (
    id                  bigserial PRIMARY KEY,
    -- "root" names the installation CA under /pki/ca and /pki/crl.
    name                text NOT NULL UNIQUE CHECK (name ~ '^[a-z0-9][a-z0-9-]{0,62}$'
                            AND name <> 'root'),
    policy_token        boolean NOT NULL DEFAULT true,
    policy_allowlist    boolean NOT NULL DEFAULT false,
    policy_approval     boolean NOT NULL DEFAULT false,
    cert_validity_days  integer NOT NULL DEFAULT 365 CHECK (cert_validity_days BETWEEN 1 AND 3650),
    created_at          timestamptz NOT NULL DEFAULT now()
);

-- Key material never lives here: key_label names the token object.
CREATE TABLE cas (
    id          bigserial PRIMARY KEY,
    project_id  bigint REFERENCES projects(id) ON DELETE CASCADE,
    kind        text NOT NULL CHECK (kind IN ('root', 'issuing', 'codesign')),
    key_label   text NOT NULL UNIQUE,
    cert_der    bytea NOT NULL,
    subject     text NOT NULL,
    not_after   timestamptz NOT NULL,
    crl_number  bigint NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CHECK ((kind = 'root') = (project_id IS NULL))
);
CREATE UNIQUE INDEX cas_one_root ON cas (kind) WHERE kind = 'root';
CREATE UNIQUE INDEX cas_one_per_project ON cas (project_id, kind) WHERE project_id IS NOT NULL;

CREATE TABLE devices (
    id          bigserial PRIMARY KEY,
    project_id  bigint NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    device_id   text NOT NULL CHECK (device_id ~ '^[a-z2-7]{32}$'),
    label       text CHECK (length(label) <= 128),
    status      text NOT NULL CHECK (status IN ('pending', 'approved', 'active', 'rejected', 'disabled')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    last_seen   timestamptz,
    UNIQUE (project_id, device_id)
);
CREATE INDEX devices_project_status ON devices (project_id, status, id);

-- Every key a device has enrolled with: the first one fixed its ID.
CREATE TABLE device_keys (
    device      bigint NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    spki_sha256 bytea NOT NULL,
    first_seen  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (device, spki_sha256)
);

CREATE TABLE certificates (
    serial              text PRIMARY KEY CHECK (serial ~ '^[0-9a-f]{32}$'),
    ca_id               bigint NOT NULL REFERENCES cas(id),
    device              bigint REFERENCES devices(id) ON DELETE SET NULL,
    kind                text NOT NULL DEFAULT 'device' CHECK (kind IN ('device', 'tls')),
    subject             text NOT NULL,
    spki_sha256         bytea NOT NULL,
    not_before          timestamptz NOT NULL,
    not_after           timestamptz NOT NULL,
    cert_der            bytea NOT NULL,
    revoked_at          timestamptz,
    revocation_reason   smallint CHECK (revocation_reason BETWEEN 0 AND 10 AND revocation_reason <> 7),
    created_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX certificates_device ON certificates (device, not_after);
CREATE INDEX certificates_revoked ON certificates (ca_id) WHERE revoked_at IS NOT NULL;
CREATE INDEX certificates_expiry ON certificates (ca_id, not_after);

-- Secrets are 256-bit random values, so SHA-256 is enough to store them:
-- the lookup is by hash, never by comparing the secret itself.
CREATE TABLE enrollment_tokens (
    id          bigserial PRIMARY KEY,
    project_id  bigint NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    token_hash  bytea NOT NULL UNIQUE,
    max_uses    integer NOT NULL CHECK (max_uses > 0),
    uses        integer NOT NULL DEFAULT 0,
    expires_at  timestamptz NOT NULL,
    revoked_at  timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CHECK (uses <= max_uses)
);

CREATE TABLE allowlist (
    project_id  bigint NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    device_id   text NOT NULL CHECK (device_id ~ '^[a-z2-7]{32}$'),
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (project_id, device_id)
);

-- Revocation reaches every node's OCSP cache, CRL and mTLS check at once:
-- the payload is "serial:1" (revoked) or "serial:0" (hold released).
CREATE FUNCTION ql_certificates_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('ql_revocation',
        NEW.serial || ':' || CASE WHEN NEW.revoked_at IS NULL THEN '0' ELSE '1' END);
    RETURN NEW;
END $$;
CREATE TRIGGER certificates_revoked AFTER UPDATE OF revoked_at ON certificates
    FOR EACH ROW WHEN (NEW.revoked_at IS DISTINCT FROM OLD.revoked_at)
    EXECUTE FUNCTION ql_certificates_notify();

-- A new project CA joins every node's client-certificate trust store.
CREATE FUNCTION ql_cas_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('ql_ca', NEW.id::text);
    RETURN NEW;
END $$;
CREATE TRIGGER cas_created AFTER INSERT ON cas
    FOR EACH ROW WHEN (NEW.kind = 'issuing') EXECUTE FUNCTION ql_cas_notify();

-- First enrollment: apply the project's policy and, when it allows,
-- record device, key and certificate in one transaction. A refusal writes
-- nothing, except the pending row that manual approval asks for.
CREATE FUNCTION ql_enroll(p_project text, p_device_id text, p_label text,
        p_token_hash bytea, p_spki bytea, p_serial text, p_cert bytea,
        p_subject text, p_not_before timestamptz, p_not_after timestamptz)
RETURNS TABLE (result text, detail text) LANGUAGE plpgsql AS $$
DECLARE
    proj projects%ROWTYPE;
    dev devices%ROWTYPE;
    tok enrollment_tokens%ROWTYPE;
    ca bigint;
    ok boolean := false;
    why text := 'enrollment not authorised';
BEGIN
    SELECT * INTO proj FROM projects WHERE name = p_project;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'not_found', 'unknown project'; RETURN;
    END IF;
    SELECT * INTO dev FROM devices
        WHERE project_id = proj.id AND device_id = p_device_id FOR UPDATE;
    IF FOUND AND dev.status IN ('rejected', 'disabled') THEN
        RETURN QUERY SELECT 'forbidden', 'device is ' || dev.status; RETURN;
    END IF;
    -- A project without the token policy ignores credentials it never gave.
    IF NOT proj.policy_token THEN
        p_token_hash := NULL;
    END IF;
    IF p_token_hash IS NOT NULL THEN
        BEGIN
            UPDATE enrollment_tokens SET uses = uses + 1
                WHERE project_id = proj.id AND token_hash = p_token_hash
                  AND revoked_at IS NULL AND expires_at > now() AND uses < max_uses
                RETURNING * INTO tok;
            ok := FOUND;
            IF NOT ok THEN
                SELECT * INTO tok FROM enrollment_tokens
                    WHERE project_id = proj.id AND token_hash = p_token_hash;
                why := CASE
                    WHEN NOT FOUND THEN 'invalid enrollment token'
                    WHEN tok.revoked_at IS NOT NULL THEN 'enrollment token revoked'
                    WHEN tok.expires_at <= now() THEN 'enrollment token expired'
                    ELSE 'enrollment token used up' END;
            END IF;
        END;
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
            RETURN QUERY SELECT 'pending', 'waiting for approval'; RETURN;
        ELSIF dev.status = 'pending' THEN
            UPDATE devices SET last_seen = now() WHERE id = dev.id;
            RETURN QUERY SELECT 'pending', 'waiting for approval'; RETURN;
        END IF;
        ok := dev.status IN ('approved', 'active');
    END IF;
    IF NOT ok THEN
        -- A refusal changes nothing; its audit row is written by the
        -- caller outside this transaction only if it wants one.
        RETURN QUERY SELECT 'denied', why; RETURN;
    END IF;
    SELECT id INTO ca FROM cas WHERE project_id = proj.id AND kind = 'issuing';
    IF dev.id IS NULL THEN
        INSERT INTO devices (project_id, device_id, label, status, last_seen)
            VALUES (proj.id, p_device_id, p_label, 'active', now()) RETURNING * INTO dev;
    ELSE
        UPDATE devices SET status = 'active', last_seen = now(),
            label = coalesce(p_label, label) WHERE id = dev.id;
    END IF;
    INSERT INTO device_keys (device, spki_sha256) VALUES (dev.id, p_spki)
        ON CONFLICT DO NOTHING;
    INSERT INTO certificates (serial, ca_id, device, subject, spki_sha256,
            not_before, not_after, cert_der)
        VALUES (p_serial, ca, dev.id, p_subject, p_spki, p_not_before, p_not_after, p_cert);
    PERFORM ql_audit('device:' || p_device_id, 'device.enroll', p_serial, 'ok',
        CASE WHEN tok.id IS NOT NULL THEN 'enrollment token ' || tok.id ELSE NULL END,
        proj.id);
    RETURN QUERY SELECT 'issued', p_device_id;
END $$;

-- Re-enrollment under mutual TLS: the presented certificate must be this
-- project's, current and unrevoked; the device keeps its record and ID.
CREATE FUNCTION ql_reenroll(p_project text, p_old_serial text, p_spki bytea,
        p_serial text, p_cert bytea, p_subject text,
        p_not_before timestamptz, p_not_after timestamptz)
RETURNS TABLE (result text, detail text) LANGUAGE plpgsql AS $$
DECLARE
    old certificates%ROWTYPE;
    dev devices%ROWTYPE;
BEGIN
    SELECT c.* INTO old FROM certificates c
        JOIN cas ON cas.id = c.ca_id
        JOIN projects p ON p.id = cas.project_id
        WHERE c.serial = p_old_serial AND p.name = p_project AND c.kind = 'device';
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'forbidden', 'client certificate was not issued for this project'; RETURN;
    END IF;
    IF old.revoked_at IS NOT NULL THEN
        RETURN QUERY SELECT 'forbidden', 'client certificate is revoked'; RETURN;
    END IF;
    IF old.not_after <= now() THEN
        RETURN QUERY SELECT 'forbidden', 'client certificate has expired'; RETURN;
    END IF;
    IF old.subject <> p_subject THEN
        RETURN QUERY SELECT 'mismatch', 'CSR subject does not match the current certificate'; RETURN;
    END IF;
    SELECT * INTO dev FROM devices WHERE id = old.device FOR UPDATE;
    IF NOT FOUND OR dev.status IN ('rejected', 'disabled') THEN
        RETURN QUERY SELECT 'forbidden', 'device is ' || coalesce(dev.status, 'deleted'); RETURN;
    END IF;
    UPDATE devices SET last_seen = now() WHERE id = dev.id;
    INSERT INTO device_keys (device, spki_sha256) VALUES (dev.id, p_spki)
        ON CONFLICT DO NOTHING;
    INSERT INTO certificates (serial, ca_id, device, subject, spki_sha256,
            not_before, not_after, cert_der)
        VALUES (p_serial, old.ca_id, dev.id, p_subject, p_spki, p_not_before, p_not_after, p_cert);
    PERFORM ql_audit('device:' || dev.device_id, 'device.reenroll', p_serial, 'ok',
        'replaces ' || p_old_serial, dev.project_id);
    RETURN QUERY SELECT 'issued', dev.device_id;
END $$;

CREATE FUNCTION ql_create_project(p_name text, p_token boolean, p_allowlist boolean,
        p_approval boolean, p_validity integer,
        p_ca_label text, p_ca_cert bytea, p_ca_subject text, p_ca_not_after timestamptz,
        p_sign_label text, p_sign_cert bytea, p_sign_subject text, p_sign_not_after timestamptz,
        p_actor text)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    pid bigint;
BEGIN
    INSERT INTO projects (name, policy_token, policy_allowlist, policy_approval, cert_validity_days)
        VALUES (p_name, p_token, p_allowlist, p_approval, p_validity) RETURNING id INTO pid;
    INSERT INTO cas (project_id, kind, key_label, cert_der, subject, not_after)
        VALUES (pid, 'issuing', p_ca_label, p_ca_cert, p_ca_subject, p_ca_not_after),
               (pid, 'codesign', p_sign_label, p_sign_cert, p_sign_subject, p_sign_not_after);
    PERFORM ql_audit(p_actor, 'project.create', p_name, 'ok', NULL, pid);
    RETURN pid;
END $$;
