//! Integration tests: one binary, each test with its own server on port 0 and its own
//! temp data dir.

mod ack_log;
mod browsers;
mod cli;
mod connections;
mod dashboard;
mod dedup;
mod disk_full;
mod durability;
mod events;
mod fixtures;
mod fuzz;
mod guard;
mod helpers;
mod limits;
mod metrics;
mod nats;
mod openapi;
mod process;
mod processing;
mod proxy;
mod realtime;
mod rejected;
mod relay;
mod retention;
mod search;
mod skips;
mod statistics;
mod stream;
mod transfer;
mod trust;
mod validation;
mod verify;
