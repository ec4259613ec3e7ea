//! A strict simulator of a Dremio coordinator, for lifeboat's tests.
//!
//! * [`server`]: the REST API (`/apiv2/...`, `/api/v3/...`) served by the active master.
//! * [`store`]: the simulator's KV tables, one JSON-lines file per table under `<paths.local>/db/sim/`.
//! * [`lock`]: the POSIX record lock (fcntl) on `<paths.local>/db/catalog/LOCK` that elects the master.
//! * [`backup`]: the `dremio-admin backup` logical format (write and read).
//! * [`client`]: a tiny blocking HTTP/1.1 client (used by `dremio-admin backup` and by tests).
//! * [`home`]: lays out a test `DREMIO_HOME`.
//! * [`catalog`]: catalog entities (spaces, folders, sources, views, physical datasets),
//!   reflections, wiki and tags, stored in `dac-namespace`, `reflection_goals`,
//!   `collaboration_wiki` and `collaboration_tags` (so backups carry them).
//!
//! # Fault injection
//!
//! The `dremio-sim` process reads `DREMIO_SIM_BACKUP_FAULT` at each backup
//! (`POST /apiv2/backup`, hence `dremio-admin backup`), to damage it for negative tests:
//!
//! * `drop-table:<table>`: the backup keeps `<table>_info.json` but omits the table's data file
//!   (`<table>_backup.json` / `.pb`);
//! * `miscount:<table>`: `<table>_info.json` states one record more than the data file holds.
//!
//! Any other value, or a table the backup does not write (unknown, `tokens`, or `profiles`
//! without `includeProfiles`), makes the backup fail with a 500 naming the variable. Unset or
//! empty: no fault.
//!
//! # View SQL checks
//!
//! Creating or updating a view parses its SQL (comments and string literals skipped) for
//! `FROM` / `JOIN` targets, dotted and `"quoted"` (or backquoted) identifiers, `FROM a, b`
//! lists; CTE names, subqueries, table functions, `sys.*` and `INFORMATION_SCHEMA.*` are not
//! checked; `FROM` inside `EXTRACT`/`TRIM`/`SUBSTRING`/`OVERLAY`/`POSITION` and
//! `IS DISTINCT FROM` is not a table. Each target must be a dataset, looked up under
//! `sqlContext` first, then as an absolute path; otherwise a 400
//! `Validation of view sql failed. Table '<a.b>' not found` (wording guessed).

pub mod backup;
pub mod catalog;
pub mod client;
pub mod home;
pub mod lock;
pub mod server;
pub mod store;
pub mod util;
