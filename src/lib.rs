//! dokku-certs: dokku's `certs` plugin, reimplemented. It installs, generates, inspects and
//! removes each app's TLS certificate under DOKKU_ROOT and keeps nginx serving, checking
//! everything before nginx sees it and rolling back if nginx disagrees.
//!
//! The library knows nothing of the command line or of printing; `src/commands/` does.

pub mod acme;
pub mod app;
pub mod bundle;
pub mod caller;
pub mod cert;
pub mod cron;
pub mod dir;
pub mod dokku;
pub mod endpoint;
pub mod error;
pub mod event;
pub mod key;
pub mod master;
pub mod metrics;
pub mod names;
pub mod nginx;
pub mod paths;
pub mod pem;
pub mod policy;
pub mod properties;
pub mod report;
pub mod scoped;
pub mod text;
pub mod transaction;
pub mod util;
pub mod vhost;

pub use error::{Error, Result};
