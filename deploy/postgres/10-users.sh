#!/bin/sh
# Separate database users for Temporal and payrecon, with the passwords from .env.
# The postgres image runs /docker-entrypoint-initdb.d/ once, when its volume is first
# initialised, and never again: to change a password later, ALTER ROLE as the superuser.
: "${TEMPORAL_DB_PASSWORD:?TEMPORAL_DB_PASSWORD is not set}"
: "${PAYRECON_DB_PASSWORD:?PAYRECON_DB_PASSWORD is not set}"

# The passwords reach psql through its environment (\getenv), not its command line.
psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$POSTGRES_USER" --dbname postgres <<'SQL'
\getenv temporal_password TEMPORAL_DB_PASSWORD
\getenv payrecon_password PAYRECON_DB_PASSWORD

-- Temporal: its persistence and visibility databases. CREATEDB lets Temporal's schema tool
-- run its create-database step (a no-op once they exist); no right on payrecon's database.
CREATE ROLE temporal LOGIN CREATEDB PASSWORD :'temporal_password';
CREATE DATABASE temporal OWNER temporal;
CREATE DATABASE temporal_visibility OWNER temporal;

-- payrecon: its own database, which its migrations fill.
CREATE ROLE payrecon LOGIN PASSWORD :'payrecon_password';
CREATE DATABASE payrecon OWNER payrecon;

-- Each database for its owner (and the superuser) alone.
REVOKE ALL ON DATABASE temporal, temporal_visibility, payrecon FROM PUBLIC;
SQL
