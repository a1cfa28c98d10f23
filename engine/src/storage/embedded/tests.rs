//! Unit tests of the embedded store that need its private tables.
use super::*;
use schema::ConnectionId;
use schema::records::{ChannelSettings, Connection, ConnectionStatus, MetaSettings};
use schema::store::ConnectionStore;

#[tokio::test]
async fn connection_secrets_are_sealed_on_disk_and_open_on_read() {
    let dir = tempfile::tempdir().unwrap();
    let config = EmbeddedConfig {
        data_dir: dir.path().to_path_buf(),
        ..Default::default()
    };
    let store = EmbeddedStore::open(&config, SecretBox::new(&[3; 32])).unwrap();
    let connection = Connection {
        id: ConnectionId::new(),
        tenant_id: TenantId::new(),
        provider: Provider::WhatsappCloud,
        name: "n".into(),
        status: ConnectionStatus::Connected,
        settings: ChannelSettings::Meta(MetaSettings {
            account_id: "pn-1".into(),
            verify_token: "verify-plain".into(),
            app_secret: "app-secret-plain".into(),
            access_token: "EAAG-token-plain".into(),
            page_id: None,
            human_agent: false,
        }),
        qr_code: None,
        created_at: Timestamp::now(),
        version: 0,
    };
    store.create_connection(&connection).await.unwrap();
    let raw = store
        .tables
        .connections
        .get(connection.id.as_bytes())
        .unwrap()
        .unwrap();
    let raw = String::from_utf8_lossy(&raw);
    for secret in ["verify-plain", "app-secret-plain", "EAAG-token-plain"] {
        assert!(!raw.contains(secret), "{secret} stored in plain text");
    }
    assert_eq!(
        store.connection(connection.id).await.unwrap(),
        Some(connection.clone())
    );
    let by_address = store
        .connection_by_address(Provider::WhatsappCloud, "pn-1")
        .await
        .unwrap();
    assert_eq!(by_address, Some(connection));
}
