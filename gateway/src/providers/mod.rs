//! Provider modules. Each owns both directions of one provider: parsing and verifying its webhooks into
//! `schema::inbound` events, and its send API behind `schema::channel::ChannelClient`.

pub mod whatsapp_cloud;
