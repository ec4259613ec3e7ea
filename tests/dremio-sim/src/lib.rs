//! A strict simulator of a Dremio coordinator, for lifeboat's tests.
//!
//! * [`server`]: the REST API (`/apiv2/...`, `/api/v3/...`) served by the active master.
//! * [`store`]: the simulator's KV tables, one JSON-lines file per table under `<paths.local>/db/sim/`.
//! * [`lock`]: the POSIX record lock (fcntl) on `<paths.local>/db/catalog/LOCK` that elects the master.
//! * [`backup`]: the `dremio-admin backup` logical format (write and read).
//! * [`client`]: a tiny blocking HTTP/1.1 client (used by `dremio-admin backup` and by tests).
//! * [`home`]: lays out a test `DREMIO_HOME`.

pub mod backup;
pub mod client;
pub mod home;
pub mod lock;
pub mod server;
pub mod store;
pub mod util;
