//! hostplane database role: provisions customers' MariaDB and PostgreSQL databases,
//! logins and grants on a db server from the controller's desired config
//! ([`proto::agent_v1::DbRoleConfig`]).
//!
//! # Pieces
//! - [`plan`] (pure): desired config → what each server should hold; what it holds →
//!   the actions converging it; sizes → quota states.
//! - [`mariadb`], [`postgres`]: read the server, run actions, measure sizes.
//! - [`trash`]: compressed dumps before every drop, expiry, restore.
//! - [`managed`]: private `mariadbd` / `postgres` instances for `hostplane up`.
//! - [`engine`]: options, the reconcile and measurement loop, health, and the agent
//!   adapter [`start_engine`].
//!
//! # Engine options (`[engine]` table of the agent config)
//! | key | default | meaning |
//! | --- | --- | --- |
//! | `engines` | `mariadb,postgres` | servers to manage |
//! | `managed` | `false` | run private server instances (below) |
//! | `managed_dir` | the engine state dir (as root, when a parent of it is private: `/var/lib/hostplane/db/<server>-<hash>`, removed by a later start once its state dir is gone) | data of managed instances; its parents must be traversable by `mysql`/`postgres` when the agent runs as root |
//! | `mariadb_url` | `mysql://root@localhost/?socket=/run/mysqld/mysqld.sock` | admin login (not managed) |
//! | `postgres_url` | `postgres:///postgres?host=/var/run/postgresql&user=postgres` | admin login (not managed) |
//! | `registry_scope` | the server name | key of this engine's objects in the servers' registries |
//! | `size_interval_secs` | `60` | size measurement and quota enforcement period |
//! | `resync_interval_secs` | `300` | full reconcile period without a new config |
//!
//! With `managed = true` the engine runs `mariadbd` on the server's address, port
//! 3306 (13306 when 3306 cannot be bound) and, when PostgreSQL is installed,
//! `postgres` on port 5432 (15432); both are restarted when they exit. Missing
//! binaries make that server unavailable (health `degraded`, or `failed` when no
//! server is available) with the install command in the detail; the other server
//! is still provisioned.
//!
//! # Reconcile
//! Level-triggered and idempotent: every apply (and every `resync_interval_secs`)
//! reads what the server holds and runs only the difference. hostplane records the
//! objects it creates in a registry table on each server (`hostplane.objects`) and
//! never touches anything else, so the operator's own databases and logins are
//! safe; a desired name taken by such an object is reported, not adopted. Names
//! and verifiers are validated again here ([`ident`]) before they reach SQL.
//! Logins are created with the controller's verifier (MariaDB
//! `IDENTIFIED BY PASSWORD '*HEX'`; PostgreSQL `PASSWORD 'SCRAM-SHA-256$…'`); a
//! new verifier is a password change. A login gets all privileges on exactly its
//! listed databases, nothing global, and cannot create databases.
//!
//! # Safe deletion
//! A database leaving the config is first dumped (`mariadb-dump` / `pg_dump`,
//! gzip) into `<state_dir>/trash/<engine>/<db>-<timestamp>.sql.gz`, fsynced,
//! then dropped; a failed dump leaves the database in place. Dumps older than
//! `trash_days` (0 = 7) are removed. A database whose config carries
//! `restore_from = "<entry>"` and that does not exist is created and loaded from
//! that dump. [`DbHandle::trash_list`] lists the entries.
//!
//! # Sizes and quotas
//! Sizes are measured every `size_interval_secs` (MariaDB: data + index length
//! from `information_schema.tables`; PostgreSQL: `pg_database_size`, which includes
//! about 7.5 MB of catalog per database) and reported by [`DbHandle::report`],
//! in `health().detail` and in `<state_dir>/status.json`. A customer's usage is the
//! sum over its databases on this server. At 90 % of its quota it is reported as a
//! warning; above 100 % writes stop:
//! - MariaDB: `INSERT, UPDATE, CREATE` are revoked on each of the customer's
//!   databases from every login granted there, and those logins' connections are
//!   closed (database privileges are re-read by new connections). `SELECT`,
//!   `DELETE`, `DROP` and `ALTER` stay, so the customer can read and free space.
//! - PostgreSQL: each login gets `default_transaction_read_only = on` in the
//!   customer's databases and its sessions there are ended. This is advisory: a
//!   client that runs `SET default_transaction_read_only = off` can write again.
//!
//! Writes come back at the first measurement under the limit. Note that MariaDB's
//! sizes are InnoDB statistics, refreshed by the server lazily (or by
//! `ANALYZE TABLE`), so enforcement can lag behind the real growth.

#![forbid(unsafe_code)]

pub mod conn;
pub mod engine;
pub mod ident;
pub mod managed;
pub mod mariadb;
pub mod options;
pub mod plan;
pub mod postgres;
mod slot;
pub mod tools;
pub mod trash;

pub use engine::{start, start_engine, DbHandle, DbRole, DbStatus, Options};
pub use plan::{QuotaLevel, QuotaStatus};
pub use trash::TrashEntry;
