-- 017: a device attested at enrollment but never quoted is 'attested',
-- not 'trusted'. 014 called it trusted from the enrollment on, which an
-- operator reads as "its measured boot matched", before any measurement
-- was seen. trusted now means: its quotes match its reference set.

ALTER TABLE devices DROP CONSTRAINT devices_att_state_check,
    ADD CONSTRAINT devices_att_state_check
        CHECK (att_state IN ('none', 'attested', 'trusted', 'tampered'));
UPDATE devices SET att_state = 'attested'
    WHERE att_state = 'trusted' AND pcr_reference IS NULL;

-- 014's, with the state above: the same AK keeps its reference (and so
-- trusted); a new AK starts a new reference set, so the device is only
-- attested until its first quote.
CREATE OR REPLACE FUNCTION ql_attest_take(p_session bytea, p_device bigint) RETURNS boolean
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
            att_state = CASE WHEN att_state = 'tampered' THEN 'tampered'
                WHEN ak_name = s.ak_name AND pcr_reference IS NOT NULL THEN 'trusted'
                ELSE 'attested' END,
            pcr_reference = CASE WHEN ak_name = s.ak_name THEN pcr_reference END,
            pcr_last = CASE WHEN ak_name = s.ak_name THEN pcr_last END
        WHERE id = p_device RETURNING * INTO d;
    PERFORM ql_audit('device:' || d.device_id, 'device.attested', d.device_id, 'ok',
        'EK certificate sha256 ' || encode(s.ek_sha256, 'hex') || ', AK name '
        || encode(s.ak_name, 'hex'), d.project_id);
    RETURN true;
END $$;
