//! Pub/sub backends behind `schema::bus::EventBus`. In-process now; Redis pub/sub between nodes joins
//! in the cluster issue, chosen in the same place as the store.

pub mod in_process;
