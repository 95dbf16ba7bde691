-- 001_init.sql: the installation's identity. Later migrations add the
-- domain tables (projects, devices, certificates, ...). Never edit a
-- migration after it has landed; add the next number instead.
CREATE TABLE installation (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    created_at  timestamptz NOT NULL DEFAULT now(),
    singleton   boolean NOT NULL DEFAULT true UNIQUE CHECK (singleton)
);
INSERT INTO installation DEFAULT VALUES;
