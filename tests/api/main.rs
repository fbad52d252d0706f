//! Integration tests: one binary, each test with its own server on port 0 and its own
//! temp data dir.

mod cli;
mod dashboard;
mod dedup;
mod durability;
mod events;
mod fixtures;
mod fuzz;
mod helpers;
mod limits;
mod metrics;
mod openapi;
mod process;
mod processing;
mod realtime;
mod retention;
mod search;
mod statistics;
mod transfer;
mod validation;
mod verify;
