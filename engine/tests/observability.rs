//! The observability files in `deploy/` are checked against a real node: its `/metrics` passes
//! `promtool check metrics`, the alert rules pass `promtool check rules` and their unit tests, and every
//! `conversa_*` series the Grafana dashboard and the alerts query is one the node exports.
//! promtool comes from Debian's `prometheus` package, installed by `deploy/scripts/ensure-promtool.sh`
//! when missing; if it cannot be installed this test fails (it never skips).

mod support;

use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use support::fake_graph::FakeGraph;
use support::{Agent, Node, api_post, provision, whatsapp};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repo root")
        .to_path_buf()
}

fn promtool() -> PathBuf {
    let output = Command::new("bash")
        .arg(repo_root().join("deploy/scripts/ensure-promtool.sh"))
        .stderr(Stdio::inherit())
        .output()
        .expect("run ensure-promtool.sh");
    assert!(
        output.status.success(),
        "promtool is required and could not be installed"
    );
    PathBuf::from(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

fn run(promtool: &Path, args: &[&str], stdin: Option<&str>) -> (bool, String) {
    let mut child = Command::new(promtool)
        .args(args)
        .current_dir(repo_root().join("deploy/prometheus"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn promtool");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write stdin");
    }
    let output = child.wait_with_output().expect("promtool output");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[tokio::test]
async fn metrics_rules_and_dashboard_agree_with_a_running_node() {
    let promtool = promtool();
    let graph = FakeGraph::start().await;
    let node = Node::start_with(Some(graph.base.clone()), Vec::new()).await;
    let tenant = provision(&node, "observability").await;
    let (mut agent, _) = Agent::connect(&node, &tenant.agent_token, None).await;
    let payload = whatsapp::webhook(
        &tenant.phone_number_id,
        vec![whatsapp::text("5511", "wamid.O1", "oi")],
        vec![],
    );
    assert_eq!(whatsapp::post(&node, &tenant, &payload).await.0, 200);
    let events = agent.events_until(|e| e.len() >= 2).await;
    let conversation = events[0]["conversation_id"].as_str().unwrap().to_string();
    let (status, _) = api_post(
        &node,
        &tenant.agent_token,
        &format!("/api/v1/conversations/{conversation}/messages"),
        json!({"text": "olá"}),
    )
    .await;
    assert_eq!(status, 202);
    agent.events_until(|e| e.len() >= 2).await;

    let metrics = reqwest::get(node.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let (ok, report) = run(&promtool, &["check", "metrics"], Some(&metrics));
    assert!(ok, "promtool check metrics:\n{report}");
    let (ok, report) = run(&promtool, &["check", "rules", "alerts.yml"], None);
    assert!(ok, "promtool check rules:\n{report}");
    let (ok, report) = run(&promtool, &["test", "rules", "alerts_test.yml"], None);
    assert!(ok, "promtool test rules:\n{report}");

    let exported: BTreeSet<String> = metrics
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_string)
        .collect();
    let dashboard_text =
        std::fs::read_to_string(repo_root().join("deploy/grafana/conversa.json")).unwrap();
    let dashboard: Value = serde_json::from_str(&dashboard_text).expect("dashboard is JSON");
    let panels = dashboard["panels"].as_array().expect("panels");
    assert!(
        panels
            .iter()
            .all(|p| p["targets"].as_array().is_some_and(|t| !t.is_empty()))
    );
    let alerts_text =
        std::fs::read_to_string(repo_root().join("deploy/prometheus/alerts.yml")).unwrap();
    for (file, text) in [
        ("grafana/conversa.json", &dashboard_text),
        ("prometheus/alerts.yml", &alerts_text),
    ] {
        // The cluster's series exist only on nodes in cluster mode: engine/tests/cluster/ checks
        // them against one.
        let missing: Vec<_> = support::referenced_series(text)
            .into_iter()
            .filter(|n| !support::only_in_cluster_mode(n))
            .filter(|n| !exported.contains(n))
            .collect();
        assert!(
            missing.is_empty(),
            "{file} queries series the node does not export: {missing:?}"
        );
    }
}
