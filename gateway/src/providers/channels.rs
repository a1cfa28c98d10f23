//! The node's one `ChannelClient`: hands each call to the client of the connection's provider, so the
//! session actors need not know which provider they speak to.

use super::evolution::EvolutionClient;
use super::graph::GraphClient;
use super::zapi::ZapiClient;
use async_trait::async_trait;
use schema::channel::{ChannelClient, MediaError, MediaStream, Outbound, SendError};
use schema::records::{Connection, Provider};

pub struct Channels {
    pub graph: GraphClient,
    pub evolution: EvolutionClient,
    pub zapi: ZapiClient,
}

impl Channels {
    fn client(&self, provider: Provider) -> &dyn ChannelClient {
        match provider {
            Provider::WhatsappCloud | Provider::Messenger | Provider::Instagram => &self.graph,
            Provider::Evolution => &self.evolution,
            Provider::Zapi => &self.zapi,
        }
    }
}

#[async_trait]
impl ChannelClient for Channels {
    async fn fetch_media(
        &self,
        connection: &Connection,
        media_id: &str,
        max_bytes: u64,
    ) -> Result<MediaStream, MediaError> {
        self.client(connection.provider)
            .fetch_media(connection, media_id, max_bytes)
            .await
    }

    async fn mark_read(
        &self,
        connection: &Connection,
        to: &str,
        provider_message_id: &str,
    ) -> Result<(), SendError> {
        self.client(connection.provider)
            .mark_read(connection, to, provider_message_id)
            .await
    }

    async fn send(&self, connection: &Connection, message: &Outbound) -> Result<String, SendError> {
        self.client(connection.provider)
            .send(connection, message)
            .await
    }

    async fn reconnect(&self, connection: &Connection) -> Result<(), SendError> {
        self.client(connection.provider).reconnect(connection).await
    }

    async fn pairing_code(&self, connection: &Connection) -> Result<Option<String>, SendError> {
        self.client(connection.provider)
            .pairing_code(connection)
            .await
    }
}
