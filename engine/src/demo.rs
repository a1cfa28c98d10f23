//! `conversa serve --demo`: provisions a demo tenant, a WhatsApp connection and an agent so a person can
//! try the node in a minute with curl and a WebSocket client. The tenant and connection are created once
//! per data directory (remembered in `demo.json`, which holds no agent token); every start issues a new
//! agent token, since tokens are stored only hashed.

use gateway::http::admin::{
    ProvisionError, provision_agent, provision_connection, provision_tenant,
};
use rand::RngCore;
use schema::api::{CreateAgentRequest, CreateConnectionRequest, CreateTenantRequest};
use schema::store::Store;
use schema::{ConnectionId, TenantId};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::Path;

/// What `demo.json` remembers.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct DemoSetup {
    tenant_id: TenantId,
    connection_id: ConnectionId,
    phone_number_id: String,
    verify_token: String,
    app_secret: String,
}

/// Everything a person needs to try the node.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DemoCredentials {
    pub tenant_id: TenantId,
    pub connection_id: ConnectionId,
    pub phone_number_id: String,
    pub verify_token: String,
    pub app_secret: String,
    pub agent_token: String,
    pub webhook_url: String,
    pub api_base: String,
    pub ws_url: String,
}

/// Why the demo could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(transparent)]
    Provision(#[from] ProvisionError),
    #[error("demo.json: {0}")]
    File(String),
}

/// Creates (first run) or reuses (later runs) the demo tenant and connection; issues an agent token.
pub async fn provision(
    store: &dyn Store,
    data_dir: &Path,
    addr: SocketAddr,
) -> Result<DemoCredentials, DemoError> {
    let path = data_dir.join("demo.json");
    let existing = match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice::<DemoSetup>(&bytes).ok(),
        Err(_) => None,
    };
    let setup = match existing {
        Some(setup)
            if store
                .connection(setup.connection_id)
                .await
                .map_err(ProvisionError::from)?
                .is_some() =>
        {
            setup
        }
        _ => {
            let tenant = provision_tenant(
                store,
                CreateTenantRequest {
                    name: "Demo".into(),
                },
            )
            .await?;
            let setup = DemoSetup {
                tenant_id: tenant.id,
                connection_id: ConnectionId::new(),
                // Numeric, like Meta's phone_number_ids: 15 random digits.
                phone_number_id: random_digits(15),
                verify_token: random_hex(),
                app_secret: random_hex(),
            };
            let created = provision_connection(
                store,
                tenant.id,
                CreateConnectionRequest {
                    name: "Demo WhatsApp number".into(),
                    provider: None,
                    account_id: Some(setup.phone_number_id.clone()),
                    verify_token: Some(setup.verify_token.clone()),
                    app_secret: Some(setup.app_secret.clone()),
                    access_token: Some("demo-access-token".into()),
                    ..CreateConnectionRequest::default()
                },
            )
            .await?;
            let setup = DemoSetup {
                connection_id: created.connection_id,
                ..setup
            };
            let json =
                serde_json::to_vec_pretty(&setup).map_err(|e| DemoError::File(e.to_string()))?;
            write_private(&path, &json).map_err(|e| DemoError::File(e.to_string()))?;
            setup
        }
    };
    let agent = provision_agent(
        store,
        setup.tenant_id,
        CreateAgentRequest {
            name: "Demo agent".into(),
            role: None,
        },
    )
    .await?;
    Ok(DemoCredentials {
        tenant_id: setup.tenant_id,
        connection_id: setup.connection_id,
        webhook_url: format!("http://{addr}/webhooks/whatsapp/{}", setup.connection_id),
        api_base: format!("http://{addr}/api/v1"),
        ws_url: format!("ws://{addr}/api/v1/ws"),
        phone_number_id: setup.phone_number_id,
        verify_token: setup.verify_token,
        app_secret: setup.app_secret,
        agent_token: agent.token,
    })
}

fn random_digits(n: usize) -> String {
    (0..n)
        .map(|i| {
            let low = if i == 0 { 1 } else { 0 };
            char::from(b'0' + rand::random_range(low..10u8))
        })
        .collect()
}

fn random_hex() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Writes `bytes` to a file only its owner can read: `demo.json` holds the app secret and verify
/// token.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    // A file left by an older version keeps its mode on open: narrow it too.
    #[cfg(unix)]
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_json_is_readable_by_its_owner_only_even_if_it_existed_before() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("demo.json");
        std::fs::write(&path, b"{}").expect("old file");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        write_private(&path, b"{\"app_secret\": \"s\"}").expect("write");
        let mode = std::fs::metadata(&path).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}
