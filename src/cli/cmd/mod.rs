//! One file per subcommand (`list` groups the read-only listings).

pub mod check;
pub mod copy;
pub mod demo;
pub mod init;
pub mod key;
pub mod list;
pub mod repair;
pub mod restore;
pub mod retention;
pub mod run;
pub mod sanitized;
pub mod schedule;
pub mod snapshot;
pub mod tarball;
