-- 015: a device's update history. The API lists the deployments a device
-- took part in (newest first), which needs device_deployments by device;
-- and a device's final report (installed or failed) is audited, so the
-- log holds what each device did with each rollout, not only what people did.

CREATE INDEX device_deployments_device ON device_deployments (device_id, deployment_id);

-- 011's function, plus the audit row of a final report, deployment.installed
-- or deployment.failed by device:ID (one per device and deployment: a
-- repeated final report returns before it; result ok: the report was taken).
CREATE OR REPLACE FUNCTION ql_deploy_report(p_device bigint, p_id bigint, p_state text,
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
    IF is_final THEN
        PERFORM ql_audit('device:' || v.device_id, 'deployment.' || p_state, p_id::text,
            'ok',
            left(concat_ws(': ', d.image_name || ' ' || d.image_version, p_detail), 512),
            d.project_id)
            FROM devices v WHERE v.id = p_device;
    END IF;
    IF is_final AND ql_deploy_advance(p_id) THEN
        PERFORM pg_notify('ql_deploy', 'p ' || d.project_id);
    END IF;
    PERFORM pg_notify('ql_deploy', 'd ' || p_device);
    RETURN QUERY SELECT 'ok'::text, NULL::text;
END $$;
