//! A strict simulator of a Dremio coordinator, for lifeboat's tests.
//!
//! * [`server`]: the REST API (`/apiv2/...`, `/api/v3/...`) served by the active master over
//!   HTTP/1.1 (hyper on tokio, a task per connection), at most N requests at a time
//!   (`--threads N`, default 16: a coordinator's request threads) over one locked state;
//!   `--latency-ms N` (default 0) makes every answer wait N ms after handling, outside the lock
//!   but still in its request slot, like a real coordinator's network and planning time, so
//!   that a client's concurrency shows.
//! * [`store`]: the simulator's KV tables, one append-only JSON-lines journal per table under
//!   `<paths.local>/db/sim/`, compacted on open and when it grows past twice its live records.
//! * [`election`]: with `--zookeeper HOSTS[/chroot]`, the master election as Dremio runs it:
//!   a Curator LeaderLatch participant; once elected it takes the lock, listens and registers
//!   `/dremio/{master,coordinator}/<uuid>` with the protobuf payload.
//! * [`lock`]: the POSIX record lock (fcntl) on `<paths.local>/db/catalog/LOCK` that elects the master.
//! * [`backup`]: the `dremio-admin backup` logical format (write and read).
//! * [`client`]: a tiny blocking HTTP/1.1 client (used by `dremio-admin backup` and by tests).
//! * [`home`]: lays out a test `DREMIO_HOME`.
//! * [`catalog`]: catalog entities (spaces, folders, sources, views, promoted datasets,
//!   functions), reflections, wiki and tags, stored in `dac-namespace`, `reflection_goals`,
//!   `collaboration_wiki` and `collaboration_tags` (so backups carry them), indexed in memory.
//! * [`fields`]: the fields each request body may carry per kind and version (Jackson's
//!   `Unrecognized field "x" (class ...)` 400 otherwise).
//! * [`seed`]: `dremio-sim seed --paths-local DIR --objects N`, a realistic catalog of N
//!   objects written straight into a fresh store, for benchmarks.
//!
//! # Catalog shapes beyond the basics
//!
//! * Promotion: `POST /api/v3/catalog/{id}` with id `dremio:/<source>/<a>/<b>` (percent-encoded)
//!   and body `{"entityType": "dataset", "id": <same id>, "type": "PHYSICAL_DATASET",
//!   "path": [source, a, b], "format": {"type": ...}}`; 409 when already promoted. Files are not
//!   modelled: any path under an existing source may be promoted. `POST /api/v3/catalog` refuses
//!   physical datasets and folders in sources (400). A source lists its promoted datasets and
//!   synthesized folders `{"id": "dremio:/lake/trips", "path", "type": "CONTAINER",
//!   "containerType": "FOLDER"}` (no tag) leading to the others; such a folder answers
//!   `{"entityType": "folder", "id", "path", "children"}` by id or by path.
//! * Functions (UDFs): `{"entityType": "function", "path", "isScalar", "functionArgList",
//!   "functionBody", "returnType"}` in a space or a space's folder; the body's tables are checked
//!   like a view's; items are `CONTAINER` / `FUNCTION`.
//! * Users: `PUT /api/v3/user/{id}` (an admin, or the user itself) with the current `tag`; the
//!   name is fixed; an optional `password` replaces it. `GET /apiv2/users/all` is admin only.
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
pub mod election;
pub mod fields;
pub mod home;
pub mod lock;
pub mod seed;
pub mod server;
pub mod store;
pub mod util;
