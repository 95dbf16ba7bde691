-- 005_users.sql: SQL functions for users, API tokens and enrollment
-- tokens in the admin API.
SELECT 1;
