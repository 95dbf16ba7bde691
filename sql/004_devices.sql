-- 004_devices.sql: SQL functions for the devices and certificates API.
SELECT 1;
