//! Routing in a healthy cluster: webhooks and replies through any node reach the owner, events reach
//! agents on every node, a number's sends leave through its one owner.

use crate::harness::{Cluster, Store, by_conversation, deliver};
use crate::support::fake_graph::FakeGraph;
use crate::support::{Agent, all_messages, api_post, eventually, metric, provision};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_sprayed_at_three_nodes_reach_agents_on_every_node_once_in_order() {
    sprayed_webhooks_reach_every_agent_once_in_order(Store::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_cassandra_webhooks_sprayed_at_three_nodes_reach_agents_on_every_node_once_in_order() {
    sprayed_webhooks_reach_every_agent_once_in_order(Store::Cassandra).await;
}

async fn sprayed_webhooks_reach_every_agent_once_in_order(store: Store) {
    const CONTACTS: usize = 9;
    const MESSAGES: usize = 4;
    let cluster = Cluster::start_on(store, 3, None).await;
    let nodes = &cluster.nodes;
    let status = cluster.status().await;
    let members = status["members"].as_array().expect("members");
    assert_eq!(members.len(), 3, "{status}");
    assert!(
        members.iter().all(|m| m["shards"].as_u64() > Some(0)),
        "{status}"
    );
    let held: u64 = members.iter().filter_map(|m| m["shards"].as_u64()).sum();
    assert_eq!((held, &status["free_shards"]), (256, &json!(0)), "{status}");

    let tenant = provision(&nodes[0], "cluster").await;
    let mut agents = Vec::new();
    for node in nodes {
        agents.push(Agent::connect(node, &tenant.agent_token, None).await.0);
    }

    // Each message goes to another node than the one before, whoever owns its conversation.
    let mut sent = 0;
    for m in 0..MESSAGES {
        for c in 0..CONTACTS {
            let node = &nodes[sent % nodes.len()];
            let contact = format!("55119{c:08}");
            deliver(node, &tenant, &contact, &format!("wamid.S{c}.{m}"), "oi").await;
            sent += 1;
        }
    }
    // Per conversation: `conversation.created`, then one `message.created` per message.
    let expected = CONTACTS * (MESSAGES + 1);
    for (i, agent) in agents.iter_mut().enumerate() {
        let events = agent.events_until(|e| e.len() >= expected).await;
        let seqs = by_conversation(&events);
        assert_eq!(seqs.len(), CONTACTS, "agent on node {i}: {seqs:?}");
        for (conversation, seqs) in &seqs {
            let want: Vec<u64> = (1..=(MESSAGES as u64 + 1)).collect();
            assert_eq!(
                seqs, &want,
                "agent on node {i}, conversation {conversation}"
            );
        }
        assert!(
            agent
                .receives_nothing_within(std::time::Duration::from_millis(300))
                .await,
            "agent on node {i} got an event twice"
        );
    }
    let (mut forwards, mut remote) = (0.0, 0.0);
    for node in nodes {
        forwards += metric(node, "conversa_cluster_forwards_total").await;
        remote += metric(node, "conversa_bus_remote_lag_seconds_count").await;
    }
    assert!(forwards > 0.0, "no webhook was forwarded to another node");
    assert!(
        remote > 0.0,
        "no node measured the Redis lag of another node's events"
    );
    if matches!(store, Store::Postgres) {
        dashboard_and_alerts_cluster_series_are_exported(nodes).await;
    }

    // A reply through each node: stored once by the owner, whichever node took it.
    let (status, page) =
        crate::support::api_get(&nodes[0], &tenant.agent_token, "/api/v1/conversations").await;
    assert_eq!(status, 200);
    let conversation = page["items"][0]["id"]
        .as_str()
        .expect("a conversation")
        .to_string();
    for (i, node) in nodes.iter().enumerate() {
        let (status, body) = api_post(
            node,
            &tenant.agent_token,
            &format!("/api/v1/conversations/{conversation}/messages"),
            json!({"text": format!("resposta {i}"), "client_message_id": format!("r-{i}")}),
        )
        .await;
        assert_eq!(status, 202, "reply through node {i}: {body}");
    }
    let messages = all_messages(&nodes[1], &tenant.agent_token, &conversation).await;
    let replies: Vec<&Value> = messages
        .iter()
        .filter(|m| m["direction"] == "outbound")
        .collect();
    assert_eq!(replies.len(), 3, "{messages:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_to_one_number_leave_through_its_one_owner_each_once() {
    const CONTACTS: usize = 9;
    let graph = FakeGraph::start().await;
    let cluster = Cluster::start_on(Store::Postgres, 3, Some(graph.base.clone())).await;
    let nodes = &cluster.nodes;
    let tenant = provision(&nodes[0], "one-number").await;
    for c in 0..CONTACTS {
        let contact = format!("55117{c:08}");
        deliver(
            &nodes[c % 3],
            &tenant,
            &contact,
            &format!("wamid.R{c}"),
            "oi",
        )
        .await;
    }
    let (_, page) = crate::support::api_get(
        &nodes[0],
        &tenant.agent_token,
        "/api/v1/conversations?limit=100",
    )
    .await;
    let conversations: Vec<String> = page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|c| c["id"].as_str().expect("id").to_string())
        .collect();
    assert_eq!(conversations.len(), CONTACTS);
    for (i, conversation) in conversations.iter().enumerate() {
        let (status, body) = api_post(
            &nodes[(i + 1) % 3],
            &tenant.agent_token,
            &format!("/api/v1/conversations/{conversation}/messages"),
            json!({"text": format!("resposta {i}"), "client_message_id": format!("c-{i}")}),
        )
        .await;
        assert_eq!(status, 202, "{body}");
    }
    // Every reply reaches the provider once...
    let sent = eventually("every reply reached the provider", || async {
        let sent = graph.requests_for(&tenant.phone_number_id);
        (sent >= CONTACTS).then_some(sent)
    })
    .await;
    let mut bodies: Vec<String> = graph
        .requests()
        .iter()
        .filter_map(|r| r.body["text"]["body"].as_str().map(str::to_string))
        .collect();
    bodies.sort();
    bodies.dedup();
    assert_eq!(
        (sent, bodies.len()),
        (CONTACTS, CONTACTS),
        "a reply went twice or not at all"
    );
    // ...from one node only: the connection's owner.
    let mut sending_nodes = 0;
    for node in nodes {
        if metric(node, "conversa_outbound_sends_total").await > 0.0 {
            sending_nodes += 1;
        }
    }
    assert_eq!(
        sending_nodes, 1,
        "the number's sends left through several nodes"
    );
    // The provider's answers were recorded on the conversations' owners.
    for conversation in &conversations {
        eventually("the reply is marked sent", || async {
            let messages = all_messages(&nodes[2], &tenant.agent_token, conversation).await;
            messages
                .iter()
                .any(|m| m["direction"] == "outbound" && m["provider_message_id"].is_string())
                .then_some(())
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_reaches_only_its_own_conversations_through_any_node() {
    let cluster = Cluster::start(3).await;
    let nodes = &cluster.nodes;
    let alice = provision(&nodes[0], "alice").await;
    let bob = provision(&nodes[1], "bob").await;
    let (bobs_agent, _) = Agent::connect(&nodes[2], &bob.agent_token, None).await;
    for c in 0..6 {
        deliver(
            &nodes[c % 3],
            &alice,
            &format!("55113{c:08}"),
            &format!("wamid.A{c}"),
            "oi",
        )
        .await;
    }
    let (_, page) =
        crate::support::api_get(&nodes[0], &alice.agent_token, "/api/v1/conversations").await;
    let alices: Vec<String> = page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|c| c["id"].as_str().expect("id").to_string())
        .collect();
    assert_eq!(alices.len(), 6);
    // Bob's agent names Alice's conversations through every node, whichever owns them: the command
    // carries Bob's tenant, so the owner finds nothing.
    for (i, conversation) in alices.iter().enumerate() {
        let node = &nodes[i % 3];
        let (status, _) = crate::support::api_get(
            node,
            &bob.agent_token,
            &format!("/api/v1/conversations/{conversation}/messages"),
        )
        .await;
        assert_eq!(status, 404, "read through node {i}");
        let (status, body) = api_post(
            node,
            &bob.agent_token,
            &format!("/api/v1/conversations/{conversation}/messages"),
            json!({"text": "intrometido"}),
        )
        .await;
        assert_eq!(status, 404, "reply through node {i}: {body}");
    }
    for conversation in &alices {
        let messages = all_messages(&nodes[1], &alice.agent_token, conversation).await;
        assert!(
            messages.iter().all(|m| m["direction"] == "inbound"),
            "{messages:?}"
        );
    }
    // Bob's socket may carry Bob's own notices (his connection was created just before); nothing of
    // Alice's, ever.
    let mut socket = bobs_agent.into_inner();
    let _ = tokio::time::timeout(std::time::Duration::from_millis(500), async {
        use futures::StreamExt;
        while let Some(Ok(frame)) = socket.next().await {
            let text = frame.to_text().unwrap_or_default().to_string();
            assert!(
                !text.contains(&alice.tenant_id)
                    && alices.iter().all(|c| !text.contains(c.as_str())),
                "Bob's agent got Alice's data: {text}"
            );
        }
    })
    .await;
}

#[tokio::test]
async fn a_node_on_the_embedded_store_refuses_cluster_mode() {
    let data = tempfile::tempdir().expect("temp dir");
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_conversa"))
        .args(["serve", "--http-addr", "127.0.0.1:0", "--data-dir"])
        .arg(data.path())
        .env("CONVERSA_CLUSTER__ENABLED", "true")
        .env("CONVERSA_CLUSTER__SECRET", "x".repeat(40))
        .env("CONVERSA_REDIS__URL", "redis://127.0.0.1:1")
        .env("RUST_LOG", "error")
        .output()
        .await
        .expect("run conversa");
    assert!(
        !output.status.success(),
        "the node started in cluster mode on the embedded store"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cluster mode needs a store every node shares"),
        "{stderr}"
    );
}

/// Every cluster series the Grafana dashboard and the alert rules query is exported by these cluster
/// nodes (the single-node observability test leaves those to this one).
async fn dashboard_and_alerts_cluster_series_are_exported(nodes: &[crate::support::Node]) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut exported = std::collections::BTreeSet::new();
    for node in nodes {
        let text = reqwest::get(node.url("/metrics"))
            .await
            .expect("metrics")
            .text()
            .await
            .expect("metrics text");
        exported.extend(
            text.lines()
                .filter(|l| !l.starts_with('#') && !l.is_empty())
                .filter_map(|l| l.split(['{', ' ']).next())
                .map(str::to_string),
        );
    }
    for file in [
        "deploy/grafana/conversa.json",
        "deploy/prometheus/alerts.yml",
    ] {
        let text = std::fs::read_to_string(root.join(file)).expect("read");
        let referenced: Vec<String> = crate::support::referenced_series(&text)
            .into_iter()
            .filter(|n| crate::support::only_in_cluster_mode(n))
            .collect();
        assert!(
            !referenced.is_empty() || file.ends_with(".json"),
            "{file} has no cluster series"
        );
        let missing: Vec<&String> = referenced
            .iter()
            .filter(|n| !exported.contains(*n))
            .collect();
        assert!(
            missing.is_empty(),
            "{file} queries cluster series no node exports: {missing:?}"
        );
    }
}
