//! The workspace on disk: where things live (`layout.rs`), which version
//! of each table it holds (`state.rs`), one sync or upload at a time
//! (`lock.rs`), one server per workspace (`servers.rs`), files put in
//! place by a rename only when complete (`replace.rs`) and made to reach
//! the disk before the state vouches for them (`durable.rs`), and the
//! record of the last runs (`runs.rs`).

pub mod durable;
pub mod layout;
pub mod lock;
pub mod replace;
pub mod runs;
pub mod servers;
pub mod state;
