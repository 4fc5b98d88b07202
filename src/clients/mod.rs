//! Typed HTTP clients: the manager's own API (for `--server`), and (later) the
//! admin APIs of the stand-ins, used by seeding and promotion.
pub mod balrog;
pub mod bouncer;
pub mod http;
pub mod manager;
