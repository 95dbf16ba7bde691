-- 008: revocation is keyed by issuer and serial, and only with reasons that
-- mean "revoked".
--
-- Every node's revoked set (TLS verify) and OCSP cache are keyed by the
-- issuing CA and the serial together (design.md), so the notification names
-- both: "ca_id:serial:1" (revoked) or "ca_id:serial:0" (revoked_at cleared
-- by hand in SQL; the API never does that).
CREATE OR REPLACE FUNCTION ql_certificates_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('ql_revocation', NEW.ca_id || ':' || NEW.serial || ':' ||
        CASE WHEN NEW.revoked_at IS NULL THEN '0' ELSE '1' END);
    RETURN NEW;
END $$;

-- RFC 5280 5.3.1 reasons 6 (certificateHold) and 8 (removeFromCRL) do not
-- mean revoked: OpenSSL ignores a full-CRL entry with reason 8, and a hold
-- would need a release that quarklink does not offer (revocation is final).
-- Rows stored with them before this migration were revocations an admin
-- asked for, so they stay revoked, as unspecified (0), audited, and every
-- node's CRL and OCSP answer is told.
DO $$
DECLARE
    c record;
BEGIN
    FOR c IN UPDATE certificates SET revocation_reason = 0
            WHERE revocation_reason IN (6, 8)
            RETURNING serial, ca_id,
                (SELECT project_id FROM cas WHERE id = ca_id) AS project LOOP
        PERFORM ql_audit('migration 008', 'certificate.revoke', c.serial, 'ok',
            'reason certificateHold/removeFromCRL is not accepted: now unspecified',
            c.project);
        PERFORM pg_notify('ql_revocation', c.ca_id || ':' || c.serial || ':1');
    END LOOP;
END $$;

ALTER TABLE certificates DROP CONSTRAINT certificates_revocation_reason_check;
ALTER TABLE certificates ADD CONSTRAINT certificates_revocation_reason_check
    CHECK (revocation_reason IN (0, 1, 2, 3, 4, 5, 9, 10));
