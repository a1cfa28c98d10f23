//! Pub/sub backends behind `schema::bus::EventBus`: in process for one node; through Redis between
//! nodes (`redis.rs`, which delivers to the node's own sockets through an in-process bus too).

pub mod in_process;
pub mod redis;
