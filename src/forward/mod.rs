//! Forwarding: passes every stored delivery on to targets inside the network, as
//! GitHub sent it, at least once.

pub mod outgoing;
